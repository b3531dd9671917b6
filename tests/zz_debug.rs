mod common;
use common::*;
#[test]
fn dbg_close_delimited() {
    for _ in 0..10 {
        let backend = Backend::start(|_| {
            Reply::RawClose(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close".to_vec(),
            )
        });
        let hf = Holdfast::start_with(
            &[&format!("* {}", backend.target())],
            "",
            &["--log-level", "4"],
        );
        let mut c = Client::connect(hf.port);
        c.set_read_timeout(std::time::Duration::from_secs(2));
        c.send(&get_req("/1", "a.test"));
        match c.try_read_response("GET") {
            Ok(r) => eprintln!("ok {}", r.text()),
            Err(e) => {
                eprintln!(
                    "ERR {e} backend_reqs={} conns={}\n{}",
                    backend.request_count(),
                    backend.connections(),
                    hf.log()
                );
                panic!();
            }
        }
    }
}
