//! pushpin.conf reading: the raw INI layer and the typed settings built on it.
#![no_main]

use std::path::Path;

use holdfast::config::{Ini, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Relative includes resolve under a folder that does not exist, so they are only warnings.
    let settings = Settings::from_text(&text, "fuzz.conf", Path::new("/nonexistent-dir"));
    match Ini::parse(&text, "fuzz.conf") {
        Ok(ini) => {
            assert_eq!(ini.len(), ini.keys().count());
            let line_count = text.split('\n').count();
            for (section, key, file, line) in ini.keys() {
                assert!(ini.get(section, key).is_some() && ini.get_list(section, key).is_some());
                assert_eq!(ini.location(section, key), Some((file, line)));
                assert!(file == "fuzz.conf" && (1..=line_count).contains(&line));
            }
        }
        // Settings are built from the INI: an INI error must fail them too.
        Err(e) => assert!(settings.is_err() && !e.to_string().contains('\n')),
    }
    match settings {
        Ok((_, warnings)) => assert!(warnings.iter().all(|w| !w.contains('\n'))),
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
