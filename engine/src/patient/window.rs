//! The patient window: what the engine remembers of one patient, in event time.
//!
//! - `chart`: the latest raw reading of every parameter with its exact observation time (the
//!   scores use it);
//! - `rows`: one 16-byte row per minute with data, over the horizon (default 6 h): for each
//!   parameter the rounded value of the minute's latest sample and its second, and the lowest NEWS2
//!   scored in that minute (the trend rule reads it);
//! - `labs`: every result per code over the horizon or a day, whichever is longer (the latest is
//!   always kept).
//!
//! Bounded: a 6 h horizon holds at most 361 rows of 16 bytes whatever the sampling rate, and
//! at most [`MAX_LAB_READINGS`] results per code for [`MAX_LAB_CODES`] codes. Rows store values
//! rounded exactly as the scores round them (whole numbers; tenths of a degree), so nothing a
//! score could see is lost; within a minute, samples are ordered by second (ties: the later
//! arrival wins, as on the chart).
//!
//! Out-of-order events are placed at their `occurredAt`. [`Window::record`] says whether the
//! event is current, late (older than the newest event by more than the lateness bound: it
//! updates history but must not fire alerts) or beyond the horizon (kept on the chart only if
//! the chart had nothing newer, never in rows).

use std::collections::VecDeque;

use crate::observation::{Consciousness, LabResult, Vitals};
use crate::scores::news2::{Chart, Reading, Rounded};
use crate::scores::sepsis::Labs;
use crate::settings::WindowSettings;
use crate::time::Timestamp;

/// Distinct lab codes kept per patient (the contract's seven plus room for others).
pub const MAX_LAB_CODES: usize = 32;
/// Results kept per lab code within the lab horizon (oldest dropped first; the latest always
/// kept).
pub const MAX_LAB_READINGS: usize = 48;
/// Labs are kept at least this long (a day), whatever the rows' horizon: the sepsis model reads
/// a lab's change over a day (docs/sepsis-screen.md). [`MAX_LAB_READINGS`] still bounds them.
pub const LAB_HORIZON_MS: i64 = 24 * 3_600_000;

const MINUTE_MS: i64 = 60_000;
const NONE: i16 = i16::MIN;

/// The parameters kept per minute, in row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Hr,
    Rr,
    Spo2,
    Sbp,
    /// Tenths of a degree C.
    Temp,
    Gcs,
    /// 0 A, 1 C, 2 V, 3 P, 4 U.
    Consciousness,
    /// 0 air, 1 oxygen.
    Oxygen,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::Hr,
        Field::Rr,
        Field::Spo2,
        Field::Sbp,
        Field::Temp,
        Field::Gcs,
        Field::Consciousness,
        Field::Oxygen,
    ];

    /// The lowest and highest value a row stores for this field: the physiological ranges
    /// ingest validates against (`VITAL_OUT_OF_RANGE`, contracts.md section 3) and the codes.
    pub const fn range(self) -> (i16, i16) {
        match self {
            Field::Hr | Field::Sbp => (0, 300),
            Field::Rr | Field::Spo2 => (0, 100),
            Field::Temp => (250, 450),
            Field::Gcs => (3, 15),
            Field::Consciousness => (0, 4),
            Field::Oxygen => (0, 1),
        }
    }

    /// The field's value in `v`, encoded as the row stores it: rounded as the scores round it
    /// and held to [`Field::range`] (ingest rejects what lies outside, so only a caller that
    /// skips validation meets the clamp).
    pub fn encode(self, v: &Vitals) -> Option<i16> {
        self.encode_rounded(v, &Rounded::of(v))
    }

    /// [`Field::encode`] with `v`'s measurements already rounded (`Rounded::of(v)`).
    pub fn encode_rounded(self, v: &Vitals, rounded: &Rounded) -> Option<i16> {
        let row = |x: Option<i64>| x.map(|x| x.clamp(-32_000, 32_000) as i16);
        let value = match self {
            Field::Hr => row(rounded.hr),
            Field::Rr => row(rounded.rr),
            Field::Spo2 => row(rounded.spo2),
            Field::Sbp => row(rounded.sbp),
            Field::Temp => row(rounded.temp),
            Field::Gcs => row(rounded.gcs),
            Field::Consciousness => v.consciousness.map(|c| match c {
                Consciousness::A => 0,
                Consciousness::C => 1,
                Consciousness::V => 2,
                Consciousness::P => 3,
                Consciousness::U => 4,
            }),
            Field::Oxygen => v.on_oxygen.map(i16::from),
        };
        let (lo, hi) = self.range();
        value.map(|x| x.clamp(lo, hi))
    }
}

// A field's position in a row is its discriminant (`Window::samples` relies on it).
const _: () = {
    let mut i = 0;
    while i < Field::ALL.len() {
        assert!(Field::ALL[i] as usize == i);
        i += 1;
    }
};

/// Rows a window grows by when it is full (256 bytes).
const ROW_GROWTH: usize = 16;

/// Where field `i` (in [`Field::ALL`] order) keeps its value in a row: the shift and width of
/// `value - range.0`; the all-ones code of the width means "no sample this minute".
const VALUE_BITS: [(u32, u32); 8] = [
    (0, 9),
    (9, 7),
    (16, 7),
    (23, 9),
    (32, 8),
    (40, 4),
    (44, 3),
    (47, 2),
];
const NEWS2_SHIFT: u32 = 49;
const NEWS2_WIDTH: u32 = 5;
/// The second of field `i`'s sample is at `SEC_SHIFT + 6 i`; the NEWS2's after the fields'.
const SEC_SHIFT: u32 = 54;
const SEC_WIDTH: u32 = 6;
const NEWS2_SEC_SHIFT: u32 = SEC_SHIFT + 8 * SEC_WIDTH;
/// The row's minute, as an offset from its window's `base_minute`, in the top 16 bits.
const MINUTE_SHIFT: u32 = 112;
/// The minutes a row's offset can tell apart (45 days): more than the rows of the longest
/// horizon span.
const MINUTE_SPAN: i64 = u16::MAX as i64;
/// The longest horizon a window holds (configuration refuses a longer one).
pub const MAX_HORIZON_MS: i64 = vigil_config::MAX_HORIZON.as_millis() as i64;
const _: () = assert!(MAX_HORIZON_MS / MINUTE_MS + 2 < MINUTE_SPAN);

const fn ones(width: u32) -> u128 {
    (1 << width) - 1
}

/// Every field, the NEWS2 and the seconds set to "no value" (seconds 0).
const ROW_EMPTY: u128 = {
    let mut bits = ones(NEWS2_WIDTH) << NEWS2_SHIFT;
    let mut i = 0;
    while i < VALUE_BITS.len() {
        let (shift, width) = VALUE_BITS[i];
        bits |= ones(width) << shift;
        i += 1;
    }
    bits
};

/// One minute of history, in 16 bytes, as bit fields of one `u128` (least significant first):
/// bits 0-48 the eight fields' values (9, 7, 7, 9, 8, 4, 3 and 2 bits: [`VALUE_BITS`], each an
/// offset from its [`Field::range`] low end), 49-53 the lowest NEWS2 scored this minute (0-20;
/// 31: none), 54-101 the second within the minute of each field's sample (6 bits each), 102-107
/// the second the NEWS2 was scored, 112-127 the minute as an offset from the window's base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row(u128);

impl Row {
    fn new(offset: u16) -> Self {
        Self(ROW_EMPTY | (u128::from(offset) << MINUTE_SHIFT))
    }

    fn bits(&self, shift: u32, width: u32) -> u128 {
        (self.0 >> shift) & ones(width)
    }

    fn set_bits(&mut self, shift: u32, width: u32, value: u128) {
        let mask = ones(width) << shift;
        self.0 = (self.0 & !mask) | ((value << shift) & mask);
    }

    /// The minute, as an offset from the window's base.
    fn offset(&self) -> u16 {
        self.bits(MINUTE_SHIFT, 16) as u16
    }

    fn set_offset(&mut self, offset: u16) {
        self.set_bits(MINUTE_SHIFT, 16, u128::from(offset));
    }

    /// Field `i`'s encoded value, `NONE` when the minute had no sample of it.
    fn value(&self, i: usize) -> i16 {
        let (shift, width) = VALUE_BITS[i];
        let code = self.bits(shift, width);
        if code == ones(width) {
            NONE
        } else {
            Field::ALL[i].range().0 + code as i16
        }
    }

    /// The second of field `i`'s sample.
    fn sec(&self, i: usize) -> u8 {
        self.bits(SEC_SHIFT + SEC_WIDTH * i as u32, SEC_WIDTH) as u8
    }

    /// Stores field `i`'s encoded value (as [`Field::encode`] gives it, within
    /// [`Field::range`]) and its second.
    fn set(&mut self, i: usize, value: i16, sec: u8) {
        let (shift, width) = VALUE_BITS[i];
        let (lo, hi) = Field::ALL[i].range();
        let code = value.clamp(lo, hi) - lo;
        self.set_bits(shift, width, code as u128);
        self.set_bits(SEC_SHIFT + SEC_WIDTH * i as u32, SEC_WIDTH, u128::from(sec));
    }

    /// The lowest NEWS2 scored in this minute and its second.
    fn news2(&self) -> Option<(u8, u8)> {
        let total = self.bits(NEWS2_SHIFT, NEWS2_WIDTH);
        (total != ones(NEWS2_WIDTH))
            .then(|| (total as u8, self.bits(NEWS2_SEC_SHIFT, SEC_WIDTH) as u8))
    }

    /// Stores a NEWS2 total (0-20, so never the "none" code) and its second.
    fn set_news2(&mut self, total: u8, sec: u8) {
        let total = u128::from(total).min(ones(NEWS2_WIDTH) - 1);
        self.set_bits(NEWS2_SHIFT, NEWS2_WIDTH, total);
        self.set_bits(NEWS2_SEC_SHIFT, SEC_WIDTH, u128::from(sec));
    }
}

/// Rows of a window, in order: the deque's two slices.
#[derive(Clone, Copy)]
struct Rows<'a>(&'a [Row], &'a [Row]);

/// The rows of a stretch of minutes ([`Window::minutes`]).
#[derive(Clone, Copy)]
pub struct Minutes<'a>(Rows<'a>);

/// One row's samples ([`Window::rows_in`]).
#[derive(Clone, Copy)]
pub struct Samples<'a> {
    row: &'a Row,
    /// The row's minute, in ms since the Unix epoch.
    minute_ms: i64,
}

impl Samples<'_> {
    /// `field`'s sample of this minute, encoded as the row stores it, and its time: what
    /// [`Window::samples`] gives for this row.
    #[inline(always)]
    pub fn get(&self, field: Field) -> Option<(i16, Timestamp)> {
        let i = field as usize;
        let value = self.row.value(i);
        (value != NONE).then(|| {
            let at = self.minute_ms + i64::from(self.row.sec(i)) * 1000;
            (value, Timestamp::from_millis(at))
        })
    }
}

impl<'a> Rows<'a> {
    fn iter(self) -> impl Iterator<Item = &'a Row> {
        self.0.iter().chain(self.1)
    }
}

/// The second within its minute of `at` (sub-second order within a row is arrival order).
fn second_of(at: Timestamp) -> u8 {
    (at.millis().rem_euclid(MINUTE_MS) / 1000) as u8
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Within the lateness bound of the newest event: it may score and fire.
    Current,
    /// Older than the lateness bound: history only.
    Late,
    /// Older than the horizon: nothing but the chart (when the chart had nothing newer).
    BeyondHorizon,
}

#[derive(Debug, Clone)]
struct LabSeries {
    code: Box<str>,
    /// Ascending by collection time.
    readings: VecDeque<Reading<f64>>,
}

/// One patient's window. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub chart: Chart,
    rows: VecDeque<Row>,
    /// The minute (since the Unix epoch) that rows' offsets count from.
    base_minute: i64,
    labs: Vec<LabSeries>,
    /// The newest event time seen (vitals or labs).
    newest: Option<Timestamp>,
    /// The newest vitals time seen (signal loss counts from it).
    newest_vitals: Option<Timestamp>,
    /// Writes to a row other than the newest (late readings): a reader that keeps figures of
    /// older rows between reads (the sepsis model's [`Carry`](crate::patient::features::Carry))
    /// knows them stale when this moved.
    edits: u64,
    /// The newest minute of a row dropped past the horizon.
    dropped: Option<i64>,
}

impl Window {
    /// The newest event time seen.
    pub fn newest(&self) -> Option<Timestamp> {
        self.newest
    }

    /// The newest vitals observation time seen.
    pub fn newest_vitals(&self) -> Option<Timestamp> {
        self.newest_vitals
    }

    fn place(&mut self, at: Timestamp, w: WindowSettings) -> Placement {
        let placement = match self.newest {
            Some(n) if n.since(at) > w.horizon_ms => Placement::BeyondHorizon,
            Some(n) if n.since(at) > w.lateness_ms => Placement::Late,
            _ => Placement::Current,
        };
        if self.newest.is_none_or(|n| at > n) {
            self.newest = Some(at);
        }
        placement
    }

    /// Records a vitals observation made at `at`. Returns where it landed and whether it changed
    /// the chart (a reading older than the chart's for every parameter it carries does not).
    pub fn record(&mut self, v: &Vitals, at: Timestamp, w: WindowSettings) -> (Placement, bool) {
        let placement = self.place(at, w);
        if self.newest_vitals.is_none_or(|n| at > n) {
            self.newest_vitals = Some(at);
        }
        // Rounded once for the chart (the scores read it there) and the row.
        let rounded = Rounded::of(v);
        let changed = self.chart.record_rounded(v, &rounded, at);
        if placement != Placement::BeyondHorizon {
            let sec = second_of(at);
            let row = self.row_mut(at, w);
            for (i, field) in Field::ALL.into_iter().enumerate() {
                if let Some(value) = field.encode_rounded(v, &rounded)
                    && (row.value(i) == NONE || row.sec(i) <= sec)
                {
                    row.set(i, value, sec);
                }
            }
        }
        (placement, changed)
    }

    /// Remembers a NEWS2 total scored at `at` (for the trend rule).
    pub fn note_score(&mut self, at: Timestamp, total: u8, w: WindowSettings) {
        if self.newest.is_some_and(|n| n.since(at) > w.horizon_ms) {
            return;
        }
        let sec = second_of(at);
        let row = self.row_mut(at, w);
        if row.news2().is_none_or(|(lowest, _)| total < lowest) {
            row.set_news2(total, sec);
        }
    }

    /// The minute (since the Unix epoch) of `row`.
    fn minute_of(&self, row: &Row) -> i64 {
        self.base_minute + i64::from(row.offset())
    }

    /// The row of `at`'s minute, created in order; rows older than the horizon are dropped.
    fn row_mut(&mut self, at: Timestamp, w: WindowSettings) -> &mut Row {
        let minute = at.millis().div_euclid(MINUTE_MS);
        // Fast path: monitors send in order, so the row is the last one or a new last one.
        let idx = match self.rows.back().map(|r| self.minute_of(r)) {
            Some(last) if last == minute => self.rows.len() - 1,
            Some(last) if last > minute => {
                self.edits = self.edits.wrapping_add(1);
                match self
                    .rows
                    .binary_search_by_key(&minute, |r| self.minute_of(r))
                {
                    Ok(i) => i,
                    Err(i) => {
                        let row = Row::new(self.offset_of(minute));
                        self.reserve_row(w);
                        self.rows.insert(i, row);
                        i
                    }
                }
            }
            _ => {
                self.evict(minute, w);
                let row = Row::new(self.offset_of(minute));
                self.reserve_row(w);
                self.rows.push_back(row);
                self.rows.len() - 1
            }
        };
        &mut self.rows[idx]
    }

    /// The offset of `minute` from the base, moving the base (and every row's offset) when
    /// `minute` lies outside the 16 bits a row holds: the first row, a gap of weeks, a late
    /// reading before the base. Rows span at most the horizon, so they and `minute` always fit.
    fn offset_of(&mut self, minute: i64) -> u16 {
        if self.rows.is_empty() {
            // Centred: half the span for late readings before it, half for time after it.
            self.base_minute = minute - MINUTE_SPAN / 2;
        } else if !(0..=MINUTE_SPAN).contains(&(minute - self.base_minute)) {
            let first = self.rows.front().map_or(minute, |r| self.minute_of(r));
            let last = self.rows.back().map_or(minute, |r| self.minute_of(r));
            let (lo, hi) = (first.min(minute), last.max(minute));
            let base = lo - (MINUTE_SPAN - (hi - lo)).max(0) / 2;
            let old = self.base_minute;
            for r in &mut self.rows {
                let m = old + i64::from(r.offset());
                r.set_offset((m - base).clamp(0, MINUTE_SPAN) as u16);
            }
            self.base_minute = base;
        }
        (minute - self.base_minute).clamp(0, MINUTE_SPAN) as u16
    }

    fn horizon_minutes(w: WindowSettings) -> i64 {
        w.horizon_ms.div_euclid(MINUTE_MS) + 1
    }

    /// Drops rows older than the horizon before the newest event (or `minute`, if newer).
    fn evict(&mut self, minute: i64, w: WindowSettings) {
        let newest_min = self
            .newest
            .map_or(minute, |n| n.millis().div_euclid(MINUTE_MS))
            .max(minute);
        let first = newest_min - Self::horizon_minutes(w);
        while let Some(minute) = self.rows.front().map(|r| self.minute_of(r))
            && minute < first
        {
            self.rows.pop_front();
            self.dropped = Some(minute);
        }
    }

    /// Grows by [`ROW_GROWTH`] rows at a time up to the horizon's row count exactly, never to
    /// the next power of two: a window holds at most one growth step of unused rows, and the
    /// block it outgrows is barely smaller than the new one. The copies stay cheap: the horizon
    /// bounds the rows (363 for 6 h, so at most 23 growths in a patient's life).
    fn reserve_row(&mut self, w: WindowSettings) {
        if self.rows.len() == self.rows.capacity() {
            let max = Self::horizon_minutes(w) as usize + 1;
            let want = ROW_GROWTH.min(max.saturating_sub(self.rows.len()));
            self.rows.reserve_exact(want.max(1));
        }
    }

    /// The value of `field` in the minute starting at `minute * 60 s`: the encoded value of the
    /// minute's latest sample and its time. `None` when the minute had no sample of it or lies
    /// beyond the horizon.
    pub fn sample(&self, field: Field, minute: i64) -> Option<(i16, Timestamp)> {
        let i = Field::ALL.iter().position(|f| *f == field)?;
        let row = self
            .rows
            .binary_search_by_key(&minute, |r| self.minute_of(r))
            .ok()
            .map(|i| &self.rows[i])?;
        let value = row.value(i);
        (value != NONE).then(|| {
            let at = Timestamp::from_millis(minute * MINUTE_MS + i64::from(row.sec(i)) * 1000);
            (value, at)
        })
    }

    /// Every sample of `field` in the minutes `first..=last`, oldest first: each minute's
    /// latest sample (encoded as the row stores it) and its time.
    pub fn samples(
        &self,
        field: Field,
        first: i64,
        last: i64,
    ) -> impl Iterator<Item = (i16, Timestamp)> + '_ {
        self.rows_in(self.minutes(first, last))
            .filter_map(move |row| row.get(field))
    }

    /// [`Window::samples`] handed to `visit` in one tight loop, the row's layout known at
    /// compile time for each field: what the sepsis model's features read at every evaluation.
    pub fn for_each_sample(
        &self,
        field: Field,
        first: i64,
        last: i64,
        visit: impl FnMut(i16, Timestamp),
    ) {
        self.for_each_in(self.minutes(first, last), field, visit);
    }

    /// The rows of the minutes `first..=last` (none when `last < first`), found once to read
    /// several fields from ([`Window::for_each_in`], [`Window::rows_in`]).
    pub fn minutes(&self, first: i64, last: i64) -> Minutes<'_> {
        if last < first {
            return Minutes(Rows(&[], &[]));
        }
        Minutes(self.rows_between(first, last))
    }

    /// The rows of `minutes`, oldest first, each read for several fields in one pass (the
    /// sepsis model's sets of vitals read the same few rows for each of their vitals).
    pub fn rows_in<'w>(&'w self, minutes: Minutes<'w>) -> impl Iterator<Item = Samples<'w>> {
        minutes.0.iter().map(|row| Samples {
            row,
            minute_ms: self.minute_of(row) * MINUTE_MS,
        })
    }

    /// [`Window::for_each_sample`] over rows already found.
    pub fn for_each_in(
        &self,
        minutes: Minutes<'_>,
        field: Field,
        visit: impl FnMut(i16, Timestamp),
    ) {
        let rows = minutes.0;
        match field {
            Field::Hr => self.visit::<0>(rows, visit),
            Field::Rr => self.visit::<1>(rows, visit),
            Field::Spo2 => self.visit::<2>(rows, visit),
            Field::Sbp => self.visit::<3>(rows, visit),
            Field::Temp => self.visit::<4>(rows, visit),
            Field::Gcs => self.visit::<5>(rows, visit),
            Field::Consciousness => self.visit::<6>(rows, visit),
            Field::Oxygen => self.visit::<7>(rows, visit),
        }
    }

    #[inline(always)]
    fn visit<const I: usize>(&self, rows: Rows<'_>, mut visit: impl FnMut(i16, Timestamp)) {
        let (shift, width) = VALUE_BITS[I];
        let absent = (1u64 << width) - 1;
        let low = Field::ALL[I].range().0;
        let sec_shift = SEC_SHIFT + SEC_WIDTH * I as u32;
        for r in rows.iter() {
            let code = (r.0 >> shift) as u64 & absent;
            if code != absent {
                let sec = (r.0 >> sec_shift) as u64 & ones(SEC_WIDTH) as u64;
                let at = self.minute_of(r) * MINUTE_MS + sec as i64 * 1000;
                visit(low + code as i16, Timestamp::from_millis(at));
            }
        }
    }

    /// The index of the first row of `minute` or later. Rows are a minute apart while a
    /// monitor sends (at least once a minute), so the row `k` minutes before the newest is
    /// usually `k` rows before it: that guess is checked, and a binary search is the fallback.
    fn index_of(&self, minute: i64) -> usize {
        let len = self.rows.len();
        let (Some(oldest), Some(newest)) = (self.rows.front(), self.rows.back()) else {
            return 0;
        };
        if minute <= self.minute_of(oldest) {
            return 0;
        }
        if minute > self.minute_of(newest) {
            return len;
        }
        let newest = self.minute_of(newest);
        let back = usize::try_from(newest - minute).unwrap_or(usize::MAX);
        if let Some(guess) = len.checked_sub(back.saturating_add(1)) {
            let at_or_after = self.minute_of(&self.rows[guess]) >= minute;
            let before = guess == 0 || self.minute_of(&self.rows[guess - 1]) < minute;
            if at_or_after && before {
                return guess;
            }
        }
        self.rows.partition_point(|r| self.minute_of(r) < minute)
    }

    /// The rows of the minutes `first..=last`, as the deque's two slices.
    fn rows_between(&self, first: i64, last: i64) -> Rows<'_> {
        let start = self.index_of(first);
        let end = self.index_of(last.saturating_add(1)).max(start);
        let (a, b) = self.rows.as_slices();
        let split = a.len();
        let slice = |s: &'_ [Row], from: usize, to: usize| -> std::ops::Range<usize> {
            from.min(s.len())..to.min(s.len())
        };
        let ra = slice(a, start, end);
        let rb = slice(b, start.saturating_sub(split), end.saturating_sub(split));
        Rows(&a[ra], &b[rb])
    }

    /// The lowest NEWS2 scored from `from`'s minute on, with the time it was scored: the trend
    /// rule's baseline. Minute resolution: a score in `from`'s minute counts.
    pub fn lowest_news2_since(&self, from: Timestamp) -> Option<(u8, Timestamp)> {
        let first = from.millis().div_euclid(MINUTE_MS);
        // Newest first, so that a strictly lower score replaces the best and ties keep the
        // newest minute; nothing is lower than 0, so a 0 ends the scan.
        let mut best: Option<(u8, u8, i64)> = None;
        for r in self.rows.iter().rev() {
            let minute = self.minute_of(r);
            if minute < first {
                break;
            }
            if let Some((total, sec)) = r.news2()
                && best.is_none_or(|(lowest, _, _)| total < lowest)
            {
                best = Some((total, sec, minute));
                if total == 0 {
                    break;
                }
            }
        }
        best.map(|(total, sec, minute)| {
            let at = minute * MINUTE_MS + i64::from(sec) * 1000;
            (total, Timestamp::from_millis(at))
        })
    }

    /// The lowest NEWS2 scored in each minute that has one, oldest first, with the time it
    /// was scored.
    pub fn news2_series(&self) -> impl Iterator<Item = (u8, Timestamp)> + '_ {
        self.rows.iter().filter_map(|r| {
            r.news2().map(|(total, sec)| {
                let at = self.minute_of(r) * MINUTE_MS + i64::from(sec) * 1000;
                (total, Timestamp::from_millis(at))
            })
        })
    }

    /// The lab codes held, in the order first seen.
    pub fn lab_codes(&self) -> impl Iterator<Item = &str> {
        self.labs.iter().map(|s| &*s.code)
    }

    /// Bytes the window holds on the heap (rows and labs, by capacity): the memory accounting
    /// behind the 16 KiB-per-patient budget (docs/window.md).
    pub fn heap_bytes(&self) -> usize {
        let labs: usize = self
            .labs
            .iter()
            .map(|s| s.code.len() + s.readings.capacity() * std::mem::size_of::<Reading<f64>>())
            .sum();
        self.rows.capacity() * std::mem::size_of::<Row>()
            + self.labs.capacity() * std::mem::size_of::<LabSeries>()
            + labs
    }

    /// Rows held (memory accounting and tests).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// How many writes have gone to a row other than the newest (see `edits`).
    pub fn edits(&self) -> u64 {
        self.edits
    }

    /// The minute (since the Unix epoch) of the newest row.
    pub fn newest_minute(&self) -> Option<i64> {
        self.rows.back().map(|r| self.minute_of(r))
    }

    /// The newest minute of a row dropped past the horizon, if any was.
    pub fn dropped_through(&self) -> Option<i64> {
        self.dropped
    }

    /// Records a lab result collected at `collected_at`; returns where it landed.
    pub fn record_lab(
        &mut self,
        lab: &LabResult,
        collected_at: Timestamp,
        w: WindowSettings,
    ) -> Placement {
        let placement = self.place(collected_at, w);
        let newest = self.newest.unwrap_or(collected_at);
        let idx = match self.labs.iter().position(|s| *s.code == *lab.code) {
            Some(i) => i,
            None if self.labs.len() < MAX_LAB_CODES => {
                self.labs.push(LabSeries {
                    code: lab.code.as_str().into(),
                    readings: VecDeque::new(),
                });
                self.labs.len() - 1
            }
            None => return placement,
        };
        let series = &mut self.labs[idx].readings;
        let reading = Reading {
            value: lab.value,
            at: collected_at,
        };
        let pos = series.partition_point(|r| r.at <= collected_at);
        let is_latest = pos == series.len();
        if placement != Placement::BeyondHorizon || is_latest {
            series.insert(pos, reading);
        }
        // Keep the horizon and the cap, but never drop the latest result.
        while series.len() > 1
            && (series.len() > MAX_LAB_READINGS
                || series
                    .front()
                    .is_some_and(|r| newest.since(r.at) > w.horizon_ms.max(LAB_HORIZON_MS)))
        {
            series.pop_front();
        }
        placement
    }

    /// Every result of `code` held, oldest first.
    pub fn lab_history<'a>(&'a self, code: &'a str) -> impl Iterator<Item = Reading<f64>> + 'a {
        // One series per code (`record_lab` keeps them so).
        self.labs
            .iter()
            .find(|s| *s.code == *code)
            .into_iter()
            .flat_map(|s| s.readings.iter().copied())
    }
}

impl Labs for Window {
    /// The latest result of `code` by collection time.
    fn lab(&self, code: &str) -> Option<Reading<f64>> {
        self.labs
            .iter()
            .find(|s| *s.code == *code)
            .and_then(|s| s.readings.back().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::news2::{round_tenths, round_whole};
    use proptest::prelude::*;

    const W: WindowSettings = WindowSettings {
        horizon_ms: 60 * MINUTE_MS,
        lateness_ms: 10 * MINUTE_MS,
    };

    fn t(sec: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, 9, 0, 0).plus_millis(sec * 1000)
    }

    fn hr(v: f64) -> Vitals {
        Vitals {
            hr: Some(v),
            ..Vitals::default()
        }
    }

    #[test]
    fn placement_follows_the_lateness_bound_and_horizon() {
        let mut w = Window::default();
        assert_eq!(w.record(&hr(80.0), t(3600), W).0, Placement::Current);
        // Exactly 10 min late is still current; one second more is late.
        assert_eq!(w.record(&hr(81.0), t(3000), W).0, Placement::Current);
        assert_eq!(w.record(&hr(82.0), t(2999), W).0, Placement::Late);
        assert_eq!(w.record(&hr(83.0), t(0), W).0, Placement::Late);
        assert_eq!(w.record(&hr(84.0), t(-1), W).0, Placement::BeyondHorizon);
        assert_eq!(w.newest(), Some(t(3600)));
        assert_eq!(w.chart.hr.map(|r| r.value), Some(80.0), "newest stays");
        assert_eq!(
            w.sample(Field::Hr, t(2999).millis() / MINUTE_MS)
                .map(|s| s.0),
            Some(82)
        );
    }

    #[test]
    fn rows_are_bounded_by_the_horizon_at_one_hertz() {
        let mut w = Window::default();
        let six_hours = WindowSettings::default();
        for s in 0..(8 * 3600) {
            w.record(&hr(60.0 + (s % 7) as f64), t(s), six_hours);
        }
        assert!(w.rows() <= 363, "{} rows", w.rows());
        assert!(w.rows.capacity() <= 363, "capacity {}", w.rows.capacity());
        assert_eq!(std::mem::size_of::<Row>(), 16);
    }

    /// Each bit field of a row holds both ends of its range without touching the others.
    #[test]
    fn row_fields_are_independent_at_their_extremes() {
        let mut r = Row::new(0);
        for i in 0..Field::ALL.len() {
            assert_eq!((r.value(i), r.sec(i)), (NONE, 0), "field {i} starts empty");
        }
        assert_eq!(r.news2(), None);
        for end in [0, 1] {
            let mut r = Row::new(u16::MAX);
            for (i, field) in Field::ALL.into_iter().enumerate() {
                let (lo, hi) = field.range();
                let value = if end == 0 { lo } else { hi };
                let sec = if end == 0 { 59 } else { 0 };
                r.set(i, value, sec);
                r.set_news2(20 * end as u8, 59 - sec);
                for (j, f) in Field::ALL.into_iter().enumerate() {
                    let want = if j <= i {
                        (if end == 0 { f.range().0 } else { f.range().1 }, sec)
                    } else {
                        (NONE, 0)
                    };
                    assert_eq!((r.value(j), r.sec(j)), want, "field {j} after setting {i}");
                }
                assert_eq!(r.news2(), Some((20 * end as u8, 59 - sec)));
                assert_eq!(r.offset(), u16::MAX, "offset kept after field {i}");
            }
        }
        r.set_news2(0, 0);
        assert_eq!(r.news2(), Some((0, 0)));
        r.set_news2(40, 3);
        assert_eq!(
            r.news2(),
            Some((30, 3)),
            "a total above 20 is held below the none code"
        );
    }

    /// Every field stores each end of the range ingest accepts exactly, and holds a value
    /// beyond it at that end.
    #[test]
    fn fields_store_the_validated_ranges_exactly() {
        let edges = [
            (Field::Hr, 0.0, 300.0),
            (Field::Rr, 0.0, 100.0),
            (Field::Spo2, 0.0, 100.0),
            (Field::Sbp, 0.0, 300.0),
            (Field::Temp, 25.0, 45.0),
            (Field::Gcs, 3.0, 15.0),
        ];
        let with = |field: Field, x: f64| {
            let mut v = Vitals::default();
            match field {
                Field::Hr => v.hr = Some(x),
                Field::Rr => v.rr = Some(x),
                Field::Spo2 => v.spo2 = Some(x),
                Field::Sbp => v.sbp = Some(x),
                Field::Temp => v.temp = Some(x),
                _ => v.gcs = Some(x),
            }
            v
        };
        let scale = |field: Field| if field == Field::Temp { 10.0 } else { 1.0 };
        for (field, lo, hi) in edges {
            let i = Field::ALL.iter().position(|f| *f == field).expect("field");
            for (x, want) in [(lo, lo), (hi, hi), (lo - 1.0, lo), (hi + 1.0, hi)] {
                let mut w = Window::default();
                w.record(&with(field, x), t(0), W);
                let minute = t(0).millis() / MINUTE_MS;
                let stored = w.sample(field, minute).map(|s| s.0);
                assert_eq!(stored, Some((want * scale(field)) as i16), "{field:?} {x}");
                assert_eq!(w.rows[0].value(i), (want * scale(field)) as i16);
            }
        }
    }

    /// Rows keep their minutes across a gap of weeks and a late reading before the base.
    #[test]
    fn minutes_survive_gaps_and_late_readings() {
        let month = WindowSettings {
            horizon_ms: MAX_HORIZON_MS,
            lateness_ms: MAX_HORIZON_MS,
        };
        let mut w = Window::default();
        let day = 24 * 3600;
        // A month of one reading a day, then one 29 days late, then 200 days later.
        for d in 0..30 {
            w.record(&hr(60.0 + d as f64), t(d * day), month);
        }
        w.record(&hr(99.0), t(day / 2), month);
        for d in 0..30 {
            let minute = t(d * day).millis() / MINUTE_MS;
            assert_eq!(
                w.sample(Field::Hr, minute).map(|s| s.0),
                Some(60 + d as i16)
            );
        }
        let late = t(day / 2).millis() / MINUTE_MS;
        assert_eq!(w.sample(Field::Hr, late).map(|s| s.0), Some(99));
        w.record(&hr(70.0), t(200 * day), month);
        assert_eq!(w.rows(), 1, "a month-old row is beyond the horizon");
        let far = t(200 * day).millis() / MINUTE_MS;
        assert_eq!(w.sample(Field::Hr, far), Some((70, t(200 * day))));
        // Before the Unix epoch too.
        let mut w = Window::default();
        w.record(&hr(71.0), Timestamp::from_millis(-MINUTE_MS), W);
        assert_eq!(w.sample(Field::Hr, -1).map(|s| s.0), Some(71));
    }

    #[test]
    fn lowest_news2_since_reads_the_minutes_in_range() {
        let mut w = Window::default();
        for (sec, total) in [(0, 2), (70, 1), (130, 5), (400, 6)] {
            w.record(&hr(80.0), t(sec), W);
            w.note_score(t(sec), total, W);
        }
        assert_eq!(w.lowest_news2_since(t(0)), Some((1, t(70))));
        assert_eq!(w.lowest_news2_since(t(120)), Some((5, t(130))));
        assert_eq!(
            w.lowest_news2_since(t(401)),
            Some((6, t(400))),
            "same minute counts"
        );
        assert_eq!(w.lowest_news2_since(t(480)), None);
    }

    #[test]
    fn labs_keep_history_and_latest() {
        let mut w = Window::default();
        let lab = |v| LabResult {
            code: "lactate".into(),
            value: v,
            unit: None,
        };
        w.record_lab(&lab(2.6), t(600), W);
        w.record_lab(&lab(1.0), t(300), W);
        assert_eq!(w.lab("lactate").map(|r| r.value), Some(2.6));
        w.record_lab(&lab(3.1), t(900), W);
        let h: Vec<f64> = w.lab_history("lactate").map(|r| r.value).collect();
        assert_eq!(h, vec![1.0, 2.6, 3.1]);
        // Labs are kept a day though the rows' horizon is an hour: a day and more later the
        // old results fall out; the latest stays.
        w.record_lab(&lab(1.5), t(900 + 3700), W);
        let h: Vec<f64> = w.lab_history("lactate").map(|r| r.value).collect();
        assert_eq!(h, vec![1.0, 2.6, 3.1, 1.5]);
        w.record_lab(&lab(1.2), t(301 + 86_400), W);
        let h: Vec<f64> = w.lab_history("lactate").map(|r| r.value).collect();
        assert_eq!(h, vec![2.6, 3.1, 1.5, 1.2]);
        w.record_lab(&lab(1.1), t(4600 + 86_401), W);
        let h: Vec<f64> = w.lab_history("lactate").map(|r| r.value).collect();
        assert_eq!(h, vec![1.2, 1.1]);
        w.record_lab(&lab(0.9), t(4 * 86_400), W);
        let h: Vec<f64> = w.lab_history("lactate").map(|r| r.value).collect();
        assert_eq!(h, vec![0.9]);
        assert!(w.lab("wbc").is_none());
    }

    /// One random reading: second offset (distinct per case), and some of the fields.
    #[derive(Debug, Clone)]
    struct Ev {
        sec: i64,
        v: Vitals,
    }

    fn ev() -> impl Strategy<Value = (i64, Vitals)> {
        (
            proptest::option::of(30.0f64..200.0),
            proptest::option::of(5.0f64..40.0),
            proptest::option::of(34.0f64..41.0),
            proptest::option::of(prop_oneof![
                Just(Consciousness::A),
                Just(Consciousness::C),
                Just(Consciousness::V),
                Just(Consciousness::P),
                Just(Consciousness::U)
            ]),
            proptest::option::of(any::<bool>()),
            proptest::option::of(70.0f64..100.0),
            proptest::option::of(40.0f64..250.0),
            proptest::option::of(3.0f64..15.0),
        )
            .prop_map(|(hr, rr, temp, c, o2, spo2, sbp, gcs)| {
                (
                    0,
                    Vitals {
                        hr,
                        rr,
                        temp,
                        consciousness: c,
                        on_oxygen: o2,
                        spo2,
                        sbp,
                        gcs: gcs.map(f64::round),
                        ..Vitals::default()
                    },
                )
            })
    }

    fn events() -> impl Strategy<Value = (Vec<Ev>, Vec<usize>)> {
        proptest::collection::vec(ev(), 1..60)
            .prop_flat_map(|vs| {
                let n = vs.len();
                (
                    Just(vs),
                    // Distinct seconds over two hours (beyond the 1 h test horizon).
                    proptest::sample::subsequence((0..7200i64).collect::<Vec<_>>(), n),
                    Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                )
            })
            .prop_map(|(vs, secs, order)| {
                let evs = vs
                    .into_iter()
                    .zip(secs)
                    .map(|((_, v), sec)| Ev { sec, v })
                    .collect();
                (evs, order)
            })
    }

    proptest! {
        /// Whatever the arrival order, every minute's value of every field equals the latest
        /// sample of that minute among the raw events, over the horizon of the newest event;
        /// the chart equals the latest raw reading.
        #[test]
        fn window_equals_brute_force_in_any_arrival_order((evs, order) in events()) {
            let mut w = Window::default();
            for &i in &order {
                w.record(&evs[i].v, t(evs[i].sec), W);
            }
            let newest = evs.iter().map(|e| e.sec).max().unwrap_or(0);
            let newest_min = t(newest).millis().div_euclid(MINUTE_MS);
            let first_min = newest_min - W.horizon_ms / MINUTE_MS - 1;
            for field in Field::ALL {
                for minute in first_min..=newest_min {
                    let brute = evs
                        .iter()
                        .filter(|e| t(e.sec).millis().div_euclid(MINUTE_MS) == minute)
                        .filter(|e| newest - e.sec <= W.horizon_ms / 1000)
                        .filter_map(|e| field.encode(&e.v).map(|x| (e.sec, x)))
                        .max_by_key(|(s, _)| *s)
                        .map(|(s, x)| (x, t(s)));
                    // Rows at the horizon's edge may be evicted a minute early or kept a
                    // minute late; inside it, the answer is exact.
                    if minute > first_min + 1 {
                        prop_assert_eq!(w.sample(field, minute), brute, "{:?} minute {}", field, minute);
                    }
                }
            }
            let latest_hr = evs
                .iter()
                .filter_map(|e| e.v.hr.map(|x| (e.sec, x)))
                .max_by_key(|(s, _)| *s)
                .map(|(s, x)| (x, t(s)));
            prop_assert_eq!(w.chart.hr.map(|r| (r.value, r.at)), latest_hr);
            let latest_c = evs
                .iter()
                .filter_map(|e| e.v.consciousness.map(|x| (e.sec, x)))
                .max_by_key(|(s, _)| *s)
                .map(|(s, x)| (x, t(s)));
            prop_assert_eq!(w.chart.consciousness.map(|r| (r.value, r.at)), latest_c);
            // What the scores band is the charted value rounded as they round it.
            let c = &w.chart;
            for (name, m, tenths) in [
                ("hr", c.hr, false),
                ("rr", c.rr, false),
                ("spo2", c.spo2, false),
                ("sbp", c.sbp, false),
                ("temp", c.temp, true),
                ("gcs", c.gcs, false),
            ] {
                if let Some(m) = m {
                    let expected = if tenths { round_tenths(m.value) } else { round_whole(m.value) };
                    prop_assert_eq!(m.rounded, expected, "{}", name);
                }
            }
        }

        /// The trend baseline equals the brute-force minimum over the scores noted in range,
        /// whatever the order they were noted in.
        #[test]
        fn lowest_news2_equals_brute_force(
            scores in proptest::collection::vec((0i64..3600, 0u8..=20), 1..80),
            from in 0i64..3600,
        ) {
            let mut w = Window::default();
            for (sec, total) in &scores {
                w.record(&hr(80.0), t(*sec), W);
                w.note_score(t(*sec), *total, W);
            }
            let from_min = t(from).millis().div_euclid(MINUTE_MS);
            let brute = scores
                .iter()
                .filter(|(s, _)| t(*s).millis().div_euclid(MINUTE_MS) >= from_min)
                .map(|(_, total)| *total)
                .min();
            prop_assert_eq!(w.lowest_news2_since(t(from)).map(|x| x.0), brute);
        }
    }
}
