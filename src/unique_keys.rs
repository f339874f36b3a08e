//! The member names of one JSON object, for refusing duplicates in linear time.

use std::borrow::Cow;
use std::collections::HashSet;

/// The keys of one object so far: a short list, a hash set once it grows past 16, so that a
/// hostile object with a million keys costs a million lookups, not their square.
#[derive(Default)]
pub(crate) struct KeySet<'a> {
    few: Vec<Cow<'a, str>>,
    many: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> KeySet<'a> {
    /// Adds a key; `false` if it was already there.
    pub(crate) fn insert(&mut self, key: Cow<'a, str>) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_repeat_before_and_after_the_switch_to_a_set() {
        for n in [3usize, 16, 17, 1000] {
            let mut keys = KeySet::default();
            for i in 0..n {
                assert!(keys.insert(Cow::Owned(format!("k{i}"))), "{n}");
            }
            assert!(!keys.insert(Cow::Borrowed("k0")), "{n}");
            assert!(!keys.insert(Cow::Owned(format!("k{}", n - 1))), "{n}");
            assert!(keys.insert(Cow::Borrowed("new")), "{n}");
        }
    }
}
