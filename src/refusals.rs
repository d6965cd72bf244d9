//! Refusals without a valid token (401) are counted per client address and
//! minute instead of each writing an audit row: the first of an address's
//! minute is written at once (`access.denied`, with the route pattern, never
//! the raw path), and the rest of that minute as one
//! `access.denied_burst` row with their count once the minute is over.
//! A client hammering the API with bad tokens thus costs one or two rows a
//! minute, not one per request.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Addresses followed at once; past this, refusals from new addresses in
/// the minute are counted under `*`.
const MAX_ADDRESSES: usize = 10_000;
/// Route patterns kept per burst.
const MAX_ROUTES: usize = 20;

#[derive(Debug)]
struct Burst {
    minute: i64,
    count: u64,
    routes: BTreeSet<String>,
}

/// A finished minute with more than one refusal from one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub addr: String,
    /// Unix minute.
    pub minute: i64,
    /// Refusals in that minute, the first one included.
    pub count: u64,
    pub routes: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Bursts {
    open: Mutex<HashMap<String, Burst>>,
}

impl Bursts {
    /// Counts one refusal; answers whether it is the first of its
    /// address's minute (write it now) and the bursts of minutes now over.
    pub fn note(&self, addr: &str, route: &str, minute: i64) -> (bool, Vec<Finished>) {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut finished = Vec::new();
        open.retain(|addr, b| {
            if b.minute >= minute {
                return true;
            }
            if b.count > 1 {
                finished.push(Finished {
                    addr: addr.clone(),
                    minute: b.minute,
                    count: b.count,
                    routes: b.routes.iter().cloned().collect(),
                });
            }
            false
        });
        let key = if open.len() >= MAX_ADDRESSES && !open.contains_key(addr) {
            "*"
        } else {
            addr
        };
        let first = match open.get_mut(key) {
            Some(b) => {
                b.count += 1;
                if b.routes.len() < MAX_ROUTES {
                    b.routes.insert(route.to_owned());
                }
                false
            }
            None => {
                open.insert(
                    key.to_owned(),
                    Burst {
                        minute,
                        count: 1,
                        routes: BTreeSet::from([route.to_owned()]),
                    },
                );
                true
            }
        };
        (first, finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_address_and_minute_and_a_count_for_the_rest() {
        let b = Bursts::default();
        assert_eq!(b.note("10.0.0.1", "GET /a", 100), (true, vec![]));
        for _ in 0..289 {
            assert_eq!(b.note("10.0.0.1", "GET /b", 100), (false, vec![]));
        }
        assert_eq!(b.note("10.0.0.2", "GET /a", 100), (true, vec![]));
        let (first, done) = b.note("10.0.0.1", "GET /a", 101);
        assert!(first, "a new minute starts a new burst");
        assert_eq!(
            done,
            vec![Finished {
                addr: "10.0.0.1".into(),
                minute: 100,
                count: 290,
                routes: vec!["GET /a".into(), "GET /b".into()],
            }],
            "the single refusal of 10.0.0.2 needs no second row"
        );
    }
}
