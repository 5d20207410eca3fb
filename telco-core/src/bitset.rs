//! A growable bit set of small non-negative ids, shared by [`CpuSet`](crate::CpuSet) and
//! [`NodeMask`](crate::NodeMask).

use std::fmt;

use smallvec::SmallVec;

use crate::error::ParseError;

const WORD_BITS: usize = 64;

/// The number of words stored inline before a set moves to the heap. They cover ids below 320,
/// enough for the NUMA nodes and CPUs of most machines, so their sets need no allocation.
const INLINE_WORDS: usize = 5;

/// The words of a [`BitSet`].
type Words = SmallVec<[u64; INLINE_WORDS]>;

/// A set of ids stored as 64-bit words, lowest id in bit 0 of word 0.
///
/// Trailing zero words are trimmed after every change so that equal sets compare equal.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct BitSet {
    words: Words,
}

impl BitSet {
    pub(crate) const fn new() -> Self {
        BitSet {
            words: SmallVec::new_const(),
        }
    }

    #[inline]
    pub(crate) fn contains(&self, id: usize) -> bool {
        self.words
            .get(id / WORD_BITS)
            .is_some_and(|word| word & (1 << (id % WORD_BITS)) != 0)
    }

    #[inline]
    pub(crate) fn insert(&mut self, id: usize) -> bool {
        let index = id / WORD_BITS;
        if self.words.len() <= index {
            self.words.resize(index + 1, 0);
        }
        let bit = 1 << (id % WORD_BITS);
        let was_absent = self.words[index] & bit == 0;
        self.words[index] |= bit;
        was_absent
    }

    pub(crate) fn remove(&mut self, id: usize) -> bool {
        let index = id / WORD_BITS;
        let Some(word) = self.words.get_mut(index) else {
            return false;
        };
        let bit = 1 << (id % WORD_BITS);
        let was_present = *word & bit != 0;
        *word &= !bit;
        self.trim();
        was_present
    }

    pub(crate) fn insert_range(&mut self, first: usize, last: usize) {
        for id in first..=last {
            self.insert(id);
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    #[inline]
    pub(crate) fn first(&self) -> Option<usize> {
        self.iter().next()
    }

    #[inline]
    pub(crate) fn last(&self) -> Option<usize> {
        let (index, word) = self
            .words
            .iter()
            .enumerate()
            .rev()
            .find(|(_, w)| **w != 0)?;
        Some(index * WORD_BITS + (WORD_BITS - 1 - word.leading_zeros() as usize))
    }

    pub(crate) fn union(&self, other: &Self) -> Self {
        let len = self.words.len().max(other.words.len());
        let words = (0..len)
            .map(|i| self.word(i) | other.word(i))
            .collect::<Words>();
        Self::from_words(words)
    }

    pub(crate) fn intersection(&self, other: &Self) -> Self {
        let len = self.words.len().min(other.words.len());
        let words = (0..len)
            .map(|i| self.word(i) & other.word(i))
            .collect::<Words>();
        Self::from_words(words)
    }

    pub(crate) fn difference(&self, other: &Self) -> Self {
        let words = (0..self.words.len())
            .map(|i| self.word(i) & !other.word(i))
            .collect::<Words>();
        Self::from_words(words)
    }

    pub(crate) fn is_subset(&self, other: &Self) -> bool {
        (0..self.words.len()).all(|i| self.word(i) & !other.word(i) == 0)
    }

    #[inline]
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            words: &self.words,
            index: 0,
            current: self.words.first().copied().unwrap_or(0),
        }
    }

    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    pub(crate) fn from_words(words: Words) -> Self {
        let mut set = BitSet { words };
        set.trim();
        set
    }

    #[inline]
    fn word(&self, index: usize) -> u64 {
        self.words.get(index).copied().unwrap_or(0)
    }

    fn trim(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }

    /// Parses the Linux list format (`0-3,8,10-11`); the empty string (or a lone newline) is the
    /// empty set. `what` names the kind of id in error messages.
    pub(crate) fn parse_list(
        text: &str,
        max_id: usize,
        what: &'static str,
    ) -> Result<Self, ParseError> {
        let trimmed = text.trim_end_matches('\n');
        let mut set = BitSet::new();
        if trimmed.is_empty() {
            return Ok(set);
        }
        for part in trimmed.split(',') {
            let (first, last) = match part.split_once('-') {
                Some((first, last)) => (
                    parse_id(first, text, max_id, what)?,
                    parse_id(last, text, max_id, what)?,
                ),
                None => {
                    let id = parse_id(part, text, max_id, what)?;
                    (id, id)
                }
            };
            if first > last {
                return Err(ParseError::new(
                    what,
                    text,
                    format!("range {part:?} ends before it starts"),
                ));
            }
            set.insert_range(first, last);
        }
        Ok(set)
    }

    /// Parses the sysfs hex mask format: comma-separated 32-bit groups, most significant first
    /// (`00000000,0000ffff`).
    pub(crate) fn parse_mask(
        text: &str,
        max_id: usize,
        what: &'static str,
    ) -> Result<Self, ParseError> {
        let trimmed = text.trim_end_matches('\n');
        if trimmed.is_empty() {
            return Err(ParseError::new(what, text, "empty mask"));
        }
        let mut words = Words::new();
        let groups: Vec<&str> = trimmed.split(',').collect();
        for (position, group) in groups.iter().rev().enumerate() {
            if group.is_empty() || group.len() > 8 || !group.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ParseError::new(
                    what,
                    text,
                    format!("{group:?} is not a group of 1 to 8 hex digits"),
                ));
            }
            let value = u64::from(u32::from_str_radix(group, 16).map_err(|_| {
                ParseError::new(what, text, format!("{group:?} is not a hex number"))
            })?);
            let word_index = position / 2;
            if words.len() <= word_index {
                words.push(0);
            }
            words[word_index] |= value << ((position % 2) * 32);
        }
        let set = BitSet::from_words(words);
        if let Some(last) = set.last()
            && last > max_id
        {
            return Err(ParseError::new(
                what,
                text,
                format!("id {last} exceeds the limit {max_id}"),
            ));
        }
        Ok(set)
    }

    /// Formats as comma-separated 32-bit hex groups, most significant first, as sysfs does. The
    /// empty set is `00000000`.
    pub(crate) fn to_mask(&self) -> String {
        let groups = (self.words.len() * 2).max(1);
        let mut text = String::with_capacity(groups * 9);
        let mut leading = true;
        for position in (0..groups).rev() {
            let value = (self.word(position / 2) >> ((position % 2) * 32)) & 0xffff_ffff;
            if leading && value == 0 && position > 0 {
                continue;
            }
            if !leading {
                text.push(',');
            }
            leading = false;
            text.push_str(&format!("{value:08x}"));
        }
        text
    }

    pub(crate) fn fmt_list(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids = self.iter().peekable();
        let mut first_range = true;
        while let Some(start) = ids.next() {
            let mut end = start;
            while ids.peek() == Some(&(end + 1)) {
                end += 1;
                ids.next();
            }
            if !first_range {
                f.write_str(",")?;
            }
            first_range = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

fn parse_id(
    part: &str,
    text: &str,
    max_id: usize,
    what: &'static str,
) -> Result<usize, ParseError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(
            what,
            text,
            format!("{part:?} is not a decimal id"),
        ));
    }
    let id: usize = part
        .parse()
        .map_err(|_| ParseError::new(what, text, format!("{part:?} is too large")))?;
    if id > max_id {
        return Err(ParseError::new(
            what,
            text,
            format!("id {id} exceeds the limit {max_id}"),
        ));
    }
    Ok(id)
}

/// Iterator over the ids of a [`BitSet`] in ascending order.
#[derive(Debug, Clone)]
pub(crate) struct Iter<'a> {
    words: &'a [u64],
    index: usize,
    current: u64,
}

impl Iterator for Iter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            if self.current != 0 {
                let bit = self.current.trailing_zeros() as usize;
                self.current &= self.current - 1;
                return Some(self.index * WORD_BITS + bit);
            }
            self.index += 1;
            self.current = *self.words.get(self.index)?;
        }
    }
}
