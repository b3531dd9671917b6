//! A worker's inbox: a bounded queue other threads push into, plus the worker's one `mio::Waker`.
//!
//! Policy when full: `push` fails and hands the message back; the sender decides (the publisher counts and logs
//! a dropped delivery, the control thread retries later). The waker fires only when the queue goes from empty to
//! non-empty (the `notified` flag), so a burst of messages costs one wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Inbox<T> {
    queue: Mutex<VecDeque<T>>,
    cap: usize,
    notified: AtomicBool,
    waker: mio::Waker,
}

impl<T> Inbox<T> {
    pub fn new(cap: usize, waker: mio::Waker) -> Arc<Inbox<T>> {
        Arc::new(Inbox {
            queue: Mutex::new(VecDeque::new()),
            cap,
            notified: AtomicBool::new(false),
            waker,
        })
    }

    /// Queue a message; `Err(msg)` when the inbox is full.
    pub fn push(&self, msg: T) -> Result<(), T> {
        {
            let mut q = match self.queue.lock() {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
            if q.len() >= self.cap {
                return Err(msg);
            }
            q.push_back(msg);
        }
        if !self.notified.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("inbox: waking worker failed: {e}");
            }
        }
        Ok(())
    }

    /// Take up to `budget` messages. The caller polls again with a zero timeout if `more_pending` says so.
    pub fn drain(&self, budget: usize, out: &mut Vec<T>) -> bool {
        // Clear the flag before taking, so a push racing with this drain wakes the worker again.
        self.notified.store(false, Ordering::Release);
        let mut q = match self.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = q.len().min(budget);
        out.extend(q.drain(..n));
        let more = !q.is_empty();
        if more {
            self.notified.store(true, Ordering::Release);
        }
        more
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_drained_in_budget() {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let inbox = Inbox::new(3, waker);
        assert!(inbox.push(1).is_ok());
        assert!(inbox.push(2).is_ok());
        assert!(inbox.push(3).is_ok());
        assert_eq!(inbox.push(4), Err(4));
        let mut out = Vec::new();
        assert!(inbox.drain(2, &mut out));
        assert_eq!(out, vec![1, 2]);
        assert!(!inbox.drain(10, &mut out));
        assert_eq!(out, vec![1, 2, 3]);
    }
}
