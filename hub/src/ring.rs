//! The consistent-hash ring every hub replica builds from the live member set.
//!
//! Positions come from FNV-1a 64 over explicit bytes followed by a 64-bit finaliser, so replicas
//! of different builds (and platforms) compute the same ring: nothing goes through `std::hash`'s
//! unspecified byte feeding or a randomly keyed hasher.

use std::hash::{BuildHasher, Hash, Hasher};

use hashring::HashRing;

/// Virtual nodes per replica: enough that 10 replicas stay within 15% of the mean load.
pub const DEFAULT_VNODES: u32 = 256;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

/// Murmur3's 64-bit finaliser: spreads FNV's weak low-entropy outputs over the whole ring.
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A `Hasher` computing FNV-1a over the fed bytes, finalised with [`mix64`].
#[derive(Clone, Debug)]
pub struct StableHasher(u64);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
        }
    }
}

/// Builds [`StableHasher`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct StableHashBuilder;

impl BuildHasher for StableHashBuilder {
    type Hasher = StableHasher;

    fn build_hasher(&self) -> StableHasher {
        StableHasher(FNV_OFFSET)
    }
}

/// One ring position of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VirtualNode {
    replica: String,
    index: u32,
}

impl Hash for VirtualNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Explicit bytes only: `str::hash` appends a separator std does not promise to keep.
        state.write(self.replica.as_bytes());
        state.write(b"#");
        state.write(&self.index.to_le_bytes());
    }
}

/// A ring key given as raw bytes.
struct KeyBytes<'a>(&'a [u8]);

impl Hash for KeyBytes<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
    }
}

/// The consistent-hash ring over replica ids.
pub struct Ring {
    ring: HashRing<VirtualNode, StableHashBuilder>,
    replicas: Vec<String>,
}

impl Ring {
    /// A ring over `replicas` with `vnodes` positions each (order of `replicas` does not matter).
    pub fn new<I, S>(replicas: I, vnodes: u32) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut replicas: Vec<String> = replicas.into_iter().map(Into::into).collect();
        replicas.sort();
        replicas.dedup();
        let mut ring = HashRing::with_hasher(StableHashBuilder);
        let nodes = replicas
            .iter()
            .flat_map(|replica| {
                (0..vnodes.max(1)).map(move |index| VirtualNode {
                    replica: replica.clone(),
                    index,
                })
            })
            .collect();
        ring.batch_add(nodes);
        Ring { ring, replicas }
    }

    /// The replicas on the ring, sorted.
    pub fn replicas(&self) -> &[String] {
        &self.replicas
    }

    /// The replica owning `key`, `None` on an empty ring.
    pub fn owner(&self, key: &[u8]) -> Option<&str> {
        self.ring
            .get(&KeyBytes(key))
            .map(|node| node.replica.as_str())
    }

    /// The owner of shard `shard`.
    pub fn shard_owner(&self, shard: u32) -> Option<&str> {
        let mut key = *b"shard-\0\0\0\0";
        key[6..].copy_from_slice(&shard.to_le_bytes());
        self.owner(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEYS: usize = 20_000;

    fn keys() -> Vec<Vec<u8>> {
        (0..KEYS)
            .map(|i| format!("ns-{}/work-{i}", i % 37).into_bytes())
            .collect()
    }

    fn replicas(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("hub-{i}")).collect()
    }

    fn assignment(ring: &Ring, keys: &[Vec<u8>]) -> Vec<String> {
        keys.iter()
            .map(|k| ring.owner(k).expect("non-empty ring").to_string())
            .collect()
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn ring_is_stable_and_order_independent() {
        let a = Ring::new(["hub-b", "hub-a", "hub-c"], DEFAULT_VNODES);
        let b = Ring::new(["hub-c", "hub-a", "hub-b", "hub-a"], DEFAULT_VNODES);
        let keys = keys();
        assert_eq!(assignment(&a, &keys), assignment(&b, &keys));
        assert_eq!(a.replicas(), ["hub-a", "hub-b", "hub-c"]);
        assert!(Ring::new(Vec::<String>::new(), 8).owner(b"x").is_none());
    }

    #[test]
    fn balance_within_fifteen_percent_for_three_and_ten_replicas() {
        let keys = keys();
        for n in [3, 10] {
            let ring = Ring::new(replicas(n), DEFAULT_VNODES);
            let mut counts: HashMap<String, usize> = HashMap::new();
            for owner in assignment(&ring, &keys) {
                *counts.entry(owner).or_default() += 1;
            }
            assert_eq!(counts.len(), n, "every replica owns keys");
            let max = counts.values().copied().max().unwrap_or(0) as f64;
            let mean = KEYS as f64 / n as f64;
            assert!(
                max / mean <= 1.15,
                "{n} replicas: max/mean = {}",
                max / mean
            );
        }
    }

    #[test]
    fn membership_change_moves_at_most_one_nth_plus_five_percent() {
        let keys = keys();
        for n in [3usize, 4, 10] {
            let before = Ring::new(replicas(n), DEFAULT_VNODES);
            let joined = Ring::new(replicas(n + 1), DEFAULT_VNODES);
            let moved = assignment(&before, &keys)
                .iter()
                .zip(assignment(&joined, &keys))
                .filter(|(a, b)| *a != b)
                .count() as f64
                / KEYS as f64;
            let bound = 1.0 / (n + 1) as f64 + 0.05;
            assert!(moved <= bound, "join {n}->{}: moved {moved}", n + 1);
            assert!(moved > 0.0, "a joining replica takes keys");

            let mut rest = replicas(n);
            let gone = rest.remove(n / 2);
            let left = Ring::new(rest, DEFAULT_VNODES);
            let before_owners = assignment(&before, &keys);
            let after_owners = assignment(&left, &keys);
            let moved_leave = before_owners
                .iter()
                .zip(&after_owners)
                .filter(|(a, b)| a != b)
                .count() as f64
                / KEYS as f64;
            assert!(
                moved_leave <= 1.0 / n as f64 + 0.05,
                "leave {n}->{}: moved {moved_leave}",
                n - 1
            );
            // Only the leaver's keys move.
            for (a, b) in before_owners.iter().zip(&after_owners) {
                if a != b {
                    assert_eq!(a, &gone);
                }
            }
        }
    }
}
