//! Budgets for lookups that reach beyond a consulate. An exact document
//! search is how an officer finds a national known elsewhere, and so also
//! how the DNI space could be walked: each consulate user gets
//! `MAPCE_LOOKUP_LIMIT` of them per clock hour (per instance), then 429
//! until the hour turns. Every lookup and every refusal is in the audit
//! log, and `GET /api/v1/lookups` shows admins the volume per user.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::Id;

#[derive(Debug)]
pub struct Lookups {
    limit: u32,
    used: Mutex<HashMap<Id, (i64, u32)>>,
}

impl Lookups {
    pub fn new(limit: u32) -> Lookups {
        Lookups {
            limit,
            used: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Takes one lookup from `user`'s budget for the hour of `now` (Unix
    /// seconds); `Err(seconds until the next hour)` when it is spent.
    pub fn take(&self, user: Id, now: i64) -> Result<(), u64> {
        let hour = now.div_euclid(3600);
        let mut used = match self.used.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Last hour's counts are of no use any more.
        if used.len() > 10_000 {
            used.retain(|_, (h, _)| *h == hour);
        }
        let entry = used.entry(user).or_insert((hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        if entry.1 >= self.limit {
            return Err((3600 - now.rem_euclid(3600)) as u64);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_the_limit_per_hour_and_then_the_time_to_wait() {
        let lookups = Lookups::new(3);
        let (ana, luis) = (Id(uuid::Uuid::from_u128(1)), Id(uuid::Uuid::from_u128(2)));
        let t = 7200 + 600;
        for _ in 0..3 {
            assert_eq!(lookups.take(ana, t), Ok(()));
        }
        assert_eq!(lookups.take(ana, t + 5), Err(3600 - 605));
        assert_eq!(lookups.take(luis, t), Ok(()), "budgets are per user");
        assert_eq!(
            lookups.take(ana, 10_800),
            Ok(()),
            "a new hour, a new budget"
        );
    }
}
