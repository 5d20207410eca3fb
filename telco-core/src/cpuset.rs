//! [`CpuSet`]: a set of logical CPU ids in the kernel's list and mask formats.

use std::fmt;
use std::str::FromStr;

use crate::bitset::{self, BitSet};
use crate::error::ParseError;

/// A set of logical CPU ids.
///
/// Its text forms are the kernel's: the list format of `/sys/devices/system/cpu/online` and
/// `cpuset.cpus` (`0-3,8-11`, the empty string for no CPU) through [`FromStr`] and [`Display`],
/// and the hex mask format of `cpumap` and `Cpus_allowed` (`00000000,0000ffff`) through
/// [`CpuSet::parse_mask`] and [`CpuSet::to_mask`]. Ids run from 0 to [`CpuSet::MAX_ID`].
///
/// ```
/// use telco_core::CpuSet;
///
/// let set: CpuSet = "0-3,8-11".parse().unwrap();
/// assert_eq!(set.len(), 8);
/// assert_eq!(set.to_mask(), "00000f0f");
/// assert_eq!(CpuSet::parse_mask("00000000,0000ffff").unwrap().to_string(), "0-15");
/// assert!("3-1".parse::<CpuSet>().is_err());
/// ```
///
/// [`Display`]: std::fmt::Display
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    bits: BitSet,
}

impl CpuSet {
    /// Largest CPU id accepted, well above the kernel's largest `CONFIG_NR_CPUS` (8192).
    pub const MAX_ID: usize = 16_383;

    /// The empty set.
    pub const fn new() -> Self {
        CpuSet {
            bits: BitSet::new(),
        }
    }

    /// Parses the sysfs hex mask format (`cpumap`, `Cpus_allowed`): comma-separated groups of up
    /// to 8 hex digits, most significant group first.
    pub fn parse_mask(text: &str) -> Result<Self, ParseError> {
        BitSet::parse_mask(text, Self::MAX_ID, "CPU mask").map(|bits| CpuSet { bits })
    }

    /// Formats the set as a sysfs hex mask without leading zero groups (`0000ffff`, or
    /// `00000000` for the empty set).
    pub fn to_mask(&self) -> String {
        self.bits.to_mask()
    }

    /// Returns true when `cpu` is in the set.
    #[inline]
    pub fn contains(&self, cpu: usize) -> bool {
        self.bits.contains(cpu)
    }

    /// Adds `cpu`; returns false when it was already present.
    ///
    /// # Panics
    ///
    /// Panics when `cpu` exceeds [`CpuSet::MAX_ID`], which is a programming error: values from
    /// outside go through the parsers.
    #[inline]
    pub fn insert(&mut self, cpu: usize) -> bool {
        assert!(cpu <= Self::MAX_ID, "CPU id {cpu} exceeds {}", Self::MAX_ID);
        self.bits.insert(cpu)
    }

    /// Removes `cpu`; returns false when it was absent.
    pub fn remove(&mut self, cpu: usize) -> bool {
        self.bits.remove(cpu)
    }

    /// Number of CPUs in the set.
    #[inline]
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// Returns true when the set has no CPU.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// Lowest CPU id.
    #[inline]
    pub fn first(&self) -> Option<usize> {
        self.bits.first()
    }

    /// Highest CPU id.
    #[inline]
    pub fn last(&self) -> Option<usize> {
        self.bits.last()
    }

    /// CPUs in either set.
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        CpuSet {
            bits: self.bits.union(&other.bits),
        }
    }

    /// CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet {
            bits: self.bits.intersection(&other.bits),
        }
    }

    /// CPUs in `self` but not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        CpuSet {
            bits: self.bits.difference(&other.bits),
        }
    }

    /// Returns true when every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.bits.is_subset(&other.bits)
    }

    /// CPU ids in ascending order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.bits.iter(),
        }
    }

    /// The set as 64-bit words, CPU 0 in bit 0 of the first word, as `sched_setaffinity` lays a
    /// `cpu_set_t` out on little-endian 64-bit machines.
    #[inline]
    pub fn as_words(&self) -> &[u64] {
        self.bits.words()
    }
}

impl FromStr for CpuSet {
    type Err = ParseError;

    /// Parses the Linux list format (`0-3,8-11`); the empty string is the empty set.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        BitSet::parse_list(text, Self::MAX_ID, "CPU list").map(|bits| CpuSet { bits })
    }
}

impl fmt::Display for CpuSet {
    /// Formats the set in the Linux list format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bits.fmt_list(f)
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet(\"{self}\")")
    }
}

impl FromIterator<usize> for CpuSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut set = CpuSet::new();
        set.extend(iter);
        set
    }
}

impl Extend<usize> for CpuSet {
    fn extend<I: IntoIterator<Item = usize>>(&mut self, iter: I) {
        for cpu in iter {
            self.insert(cpu);
        }
    }
}

impl<'a> IntoIterator for &'a CpuSet {
    type Item = usize;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Iterator over the CPU ids of a [`CpuSet`] in ascending order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: bitset::Iter<'a>,
}

impl Iterator for Iter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        self.inner.next()
    }
}

#[cfg(feature = "serde")]
crate::serde_as_text!(CpuSet, "a CPU list such as \"0-3,8\"");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn list_round_trips_canonical_form() {
        for text in ["", "0", "0-3", "0-3,8-11", "1,3,5", "0,2-4,8191"] {
            let set: CpuSet = text.parse().unwrap();
            assert_eq!(set.to_string(), text);
        }
    }

    #[test]
    fn list_accepts_trailing_newline_and_merges_overlaps() {
        let set: CpuSet = "0-3,2-5,7\n".parse().unwrap();
        assert_eq!(set.to_string(), "0-5,7");
        let single: CpuSet = "4-4".parse().unwrap();
        assert_eq!(single.to_string(), "4");
    }

    #[test]
    fn list_rejects_malformed_text_quoting_it() {
        for text in [
            "3-1", "0-", "-3", "a", "1,,2", ",1", "1,", " 1", "1 ", "0x1", "16384", "1-16384",
        ] {
            let error = text.parse::<CpuSet>().unwrap_err();
            assert_eq!(error.text(), text);
            assert!(error.to_string().contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn supports_ids_up_to_max() {
        let set: CpuSet = "8192,16383".parse().unwrap();
        assert!(set.contains(8192));
        assert_eq!(set.last(), Some(16383));
    }

    #[test]
    fn mask_parses_sysfs_groups() {
        assert_eq!(
            CpuSet::parse_mask("00000000,0000ffff").unwrap().to_string(),
            "0-15"
        );
        assert_eq!(
            CpuSet::parse_mask("00000001,00000000").unwrap().to_string(),
            "32"
        );
        assert_eq!(CpuSet::parse_mask("f\n").unwrap().to_string(), "0-3");
        assert_eq!(
            CpuSet::parse_mask("80000000,00000000,00000001")
                .unwrap()
                .to_string(),
            "0,95"
        );
        assert!(CpuSet::parse_mask("00000000").unwrap().is_empty());
    }

    #[test]
    fn mask_rejects_malformed_groups() {
        for text in ["", "g", "000000001", "ff,,ff", "0x1", "ff,"] {
            let error = CpuSet::parse_mask(text).unwrap_err();
            assert_eq!(error.text(), text);
        }
    }

    #[test]
    fn mask_formats_without_leading_zero_groups() {
        let set: CpuSet = "0,95".parse().unwrap();
        assert_eq!(set.to_mask(), "80000000,00000000,00000001");
        assert_eq!(CpuSet::new().to_mask(), "00000000");
        let low: CpuSet = "0-3".parse().unwrap();
        assert_eq!(low.to_mask(), "0000000f");
    }

    #[test]
    fn set_operations() {
        let a: CpuSet = "0-7".parse().unwrap();
        let b: CpuSet = "4-11".parse().unwrap();
        assert_eq!(a.union(&b).to_string(), "0-11");
        assert_eq!(a.intersection(&b).to_string(), "4-7");
        assert_eq!(a.difference(&b).to_string(), "0-3");
        assert_eq!(b.difference(&a).to_string(), "8-11");
        assert!(a.intersection(&b).is_subset(&a));
        assert!(!a.is_subset(&b));
        assert_eq!(a.first(), Some(0));
        assert_eq!(b.last(), Some(11));
        assert_eq!(a.iter().collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn sets_beyond_inline_words_combine() {
        let small: CpuSet = "0-7".parse().unwrap();
        let large: CpuSet = "4-11,700,1023".parse().unwrap();
        assert_eq!(small.union(&large).to_string(), "0-11,700,1023");
        assert_eq!(large.intersection(&small).to_string(), "4-7");
        let mut shrunk = large.difference(&"700,1023".parse().unwrap());
        assert_eq!(shrunk, "4-11".parse().unwrap());
        assert!(shrunk.insert(1023));
        assert!(shrunk.remove(1023));
        assert_eq!(shrunk, "4-11".parse().unwrap());
        assert_eq!(large.last(), Some(1023));
        assert_eq!(large.len(), 10);
    }

    #[test]
    fn removing_last_cpu_gives_equal_empty_set() {
        let mut set: CpuSet = "200".parse().unwrap();
        assert!(set.remove(200));
        assert_eq!(set, CpuSet::new());
        assert_eq!(set.to_mask(), "00000000");
    }

    proptest! {
        #[test]
        fn list_print_then_parse_is_identity(ids in proptest::collection::btree_set(0usize..=CpuSet::MAX_ID, 0..64)) {
            let set: CpuSet = ids.iter().copied().collect();
            let text = set.to_string();
            let parsed: CpuSet = text.parse().unwrap();
            prop_assert_eq!(&parsed, &set);
            prop_assert_eq!(parsed.to_string(), text);
            prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), ids.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn mask_print_then_parse_is_identity(ids in proptest::collection::btree_set(0usize..=CpuSet::MAX_ID, 0..64)) {
            let set: CpuSet = ids.into_iter().collect();
            let mask = set.to_mask();
            prop_assert_eq!(CpuSet::parse_mask(&mask).unwrap(), set);
        }

        #[test]
        fn list_parse_then_print_is_canonical(ranges in proptest::collection::vec((0usize..300, 0usize..20), 0..8)) {
            let text = ranges.iter().map(|(start, width)| if *width == 0 { start.to_string() } else { format!("{}-{}", start, start + width) }).collect::<Vec<_>>().join(",");
            let set: CpuSet = text.parse().unwrap();
            let canonical = set.to_string();
            prop_assert_eq!(canonical.parse::<CpuSet>().unwrap().to_string(), canonical.clone());
            let expected: std::collections::BTreeSet<usize> = ranges.iter().flat_map(|(s, w)| *s..=s + w).collect();
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), expected.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn parser_never_panics(text in "[0-9a-f,\\- x]{0,24}") {
            let _ = text.parse::<CpuSet>();
            let _ = CpuSet::parse_mask(&text);
        }
    }
}
