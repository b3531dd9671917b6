//! The `holdfast` binary: parse the command line, read the configuration, run the server.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use holdfast::{cli, logging, publish_cli, server};

/// jemalloc gives freed memory back to the system (see README, "Dependencies").
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("publish") {
        return ExitCode::from(publish_cli::run(&args[1..]) as u8);
    }
    let opts = match cli::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("holdfast: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if opts.version {
        println!("holdfast {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let startup = match server::prepare(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("holdfast: {e}");
            return ExitCode::from(1);
        }
    };
    let level = opts.log_level.unwrap_or(startup.settings.log_level);
    if let Err(e) = logging::init(level, opts.log_file.as_deref()) {
        eprintln!("holdfast: {e}");
        return ExitCode::from(1);
    }
    let result = server::run(startup);
    logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("holdfast: {e}");
            ExitCode::from(1)
        }
    }
}
