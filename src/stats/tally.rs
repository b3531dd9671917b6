//! Receivers per published item and transport, summed over the workers, for the stats `message` event.
//!
//! Every worker that got a publish batch adds its counts; the last one to finish (`remaining` reaching zero)
//! takes the totals. No thread waits for another, and a worker whose inbox refused the batch is subtracted by
//! the publisher at once, so a tally always completes.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use super::Transport;
use crate::publish::Item;

#[derive(Debug)]
pub struct Tally {
    pub items: Arc<[Arc<Item>]>,
    counts: Vec<[AtomicU32; 3]>,
    remaining: AtomicUsize,
}

impl Tally {
    pub fn new(items: Arc<[Arc<Item>]>, workers: usize) -> Tally {
        let counts = (0..items.len()).map(|_| Default::default()).collect();
        Tally {
            items,
            counts,
            remaining: AtomicUsize::new(workers),
        }
    }

    pub fn add(&self, item: usize, transport: Transport, n: u32) {
        if n == 0 {
            return;
        }
        if let Some(c) = self.counts.get(item) {
            c[transport.index()].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// One worker is done with the batch (or never got it). True for the call that completed the tally.
    pub fn finish_one(&self) -> bool {
        self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Receivers of item `i` by transport; meaningful once the tally completed.
    pub fn count(&self, item: usize, transport: Transport) -> u32 {
        self.counts
            .get(item)
            .map_or(0, |c| c[transport.index()].load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::parse_publish_body;

    #[test]
    fn the_last_worker_completes_the_tally_with_the_sum() {
        let body = br#"{"items":[{"channel":"a","formats":{"http-stream":{"content":"x"}}}]}"#;
        let items: Arc<[Arc<Item>]> = parse_publish_body(body)
            .unwrap()
            .into_iter()
            .map(Arc::new)
            .collect();
        let t = Tally::new(items, 3);
        t.add(0, Transport::HttpStream, 2);
        assert!(!t.finish_one());
        t.add(0, Transport::HttpStream, 1);
        t.add(0, Transport::WsMessage, 4);
        assert!(!t.finish_one());
        assert!(t.finish_one());
        assert_eq!(t.count(0, Transport::HttpStream), 3);
        assert_eq!(t.count(0, Transport::WsMessage), 4);
        assert_eq!(t.count(0, Transport::HttpResponse), 0);
        assert_eq!(t.count(5, Transport::HttpResponse), 0);
    }
}
