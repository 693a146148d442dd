//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: parsing into per-field sets and
//! finding the next matching wall-clock minute.
//!
//! Every field is parsed into a small bit set, and the day fields into a rule that yields, for a
//! given month, the set of days it matches. The search then walks year → month → day → hour →
//! minute, jumping to the next member of each set instead of stepping minute by minute, so even a
//! cron that matches once in four years (`0 0 29 2 ? *`) or never (`0 0 30 2 ? *`) is answered
//! after at most a few hundred month checks.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::ScheduleError;

/// First year a cron expression can name (the EventBridge table's lower bound).
pub(super) const YEAR_MIN: u32 = 1970;
/// Last year a cron expression can name; also where the next-fire search gives up.
pub(super) const YEAR_MAX: u32 = 2199;

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed, validated cron expression.
///
/// Opaque on purpose: callers only need to know that it parsed and when it fires next (through
/// [`super::Schedule`]); `Display` gives back the six fields as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression {
    text: String,
    minutes: Bits,
    hours: Bits,
    days: DayRule,
    months: Bits,
    /// Years, stored as `year - YEAR_MIN`.
    years: Bits,
}

impl fmt::Display for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron({})", self.text)
    }
}

/// Which of the two day fields carries the restriction (the other one is `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRule {
    Month(DomRule),
    Week(DowRule),
}

/// Day-of-month rules.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DomRule {
    /// Plain days 1–31 (values, ranges, steps, `*`); days past the month's end never match.
    Days(Bits),
    /// `L`: the month's last day.
    Last,
    /// `LW`: the last weekday (Monday–Friday) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest day `n`, never crossing into another month.
    NearestWeekday(u32),
}

/// Day-of-week rules; weekdays are numbered 1 (Sunday) to 7 (Saturday) as AWS does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DowRule {
    /// Plain weekdays (values, names, ranges, `*`, and `L` alone meaning Saturday).
    Days(Bits),
    /// `nL`: the last weekday `n` of the month.
    Last(u32),
    /// `d#n`: the `n`-th weekday `d` of the month.
    Nth { weekday: u32, occurrence: u32 },
}

/// The six fields and their limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Minutes => "minutes",
            Self::Hours => "hours",
            Self::DayOfMonth => "day-of-month",
            Self::Month => "month",
            Self::DayOfWeek => "day-of-week",
            Self::Year => "year",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Self::Minutes => (0, 59),
            Self::Hours => (0, 23),
            Self::DayOfMonth => (1, 31),
            Self::Month => (1, 12),
            Self::DayOfWeek => (1, 7),
            Self::Year => (YEAR_MIN, YEAR_MAX),
        }
    }

    /// Names accepted in place of numbers, index 0 standing for the field's minimum.
    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Month => MONTH_NAMES,
            Self::DayOfWeek => WEEKDAY_NAMES,
            _ => &[],
        }
    }

    /// How a range is described in an out-of-range message.
    fn range_text(self) -> &'static str {
        match self {
            Self::Minutes => "0-59",
            Self::Hours => "0-23",
            Self::DayOfMonth => "1-31",
            Self::Month => "1-12 or JAN-DEC",
            Self::DayOfWeek => "1-7 or SUN-SAT",
            Self::Year => "1970-2199",
        }
    }

    /// Whether a range may run past the field's end and wrap to its start (`FRI-MON`, `22-2`).
    /// Cyclic fields wrap, as in the Quartz dialect AWS's syntax follows; years are not cyclic.
    fn wraps(self) -> bool {
        self != Self::Year
    }

    /// Bit index of a value: years are offset so that 230 of them fit in [`Bits`].
    fn index(self, value: u32) -> u32 {
        if self == Self::Year {
            value - YEAR_MIN
        } else {
            value
        }
    }
}

/// A set of small integers (0–255). Fixed-size and `Copy`, so parsing allocates nothing per field
/// and the search's "next member at or after v" is a few word operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bits([u64; 4]);

impl Bits {
    fn insert(&mut self, v: u32) {
        if let Some(word) = self.0.get_mut((v / 64) as usize) {
            *word |= 1 << (v % 64);
        }
    }

    fn contains(&self, v: u32) -> bool {
        self.0
            .get((v / 64) as usize)
            .is_some_and(|word| word & (1 << (v % 64)) != 0)
    }

    /// Smallest member `>= from`.
    fn next_from(&self, from: u32) -> Option<u32> {
        let mut word_index = (from / 64) as usize;
        let mut mask = u64::MAX.checked_shl(from % 64).unwrap_or(0);
        while let Some(word) = self.0.get(word_index) {
            let hits = word & mask;
            if hits != 0 {
                return Some(word_index as u32 * 64 + hits.trailing_zeros());
            }
            word_index += 1;
            mask = u64::MAX;
        }
        None
    }
}

/// Builds a field error: `invalid cron expression: <field> field "<token>": <reason>`.
fn field_error(field: Field, token: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::CronField {
        field: field.name(),
        token: token.to_owned(),
        reason: reason.into(),
    }
}

impl CronExpression {
    /// Parses the text between `cron(` and `)`.
    pub(super) fn parse_body(body: &str) -> Result<Self, ScheduleError> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields.as_slice() else {
            return Err(ScheduleError::Cron(format!(
                "expected 6 fields (minutes hours day-of-month month day-of-week year), found {}",
                fields.len()
            )));
        };
        let minutes = parse_plain_field(Field::Minutes, minutes)?;
        let hours = parse_plain_field(Field::Hours, hours)?;
        let dom = parse_dom(dom)?;
        let months = parse_plain_field(Field::Month, month)?;
        let dow = parse_dow(dow)?;
        let years = parse_plain_field(Field::Year, year)?;
        // AWS: "You can't specify the Day-of-month and Day-of-week fields in the same cron
        // expression. If you specify a value or a * (asterisk) in one of the fields, you must use
        // a ? (question mark) in the other."
        let days = match (dom, dow) {
            (Some(dom), None) => DayRule::Month(dom),
            (None, Some(dow)) => DayRule::Week(dow),
            (Some(_), Some(_)) => {
                return Err(ScheduleError::Cron(
                    "day-of-month and day-of-week cannot both be specified; \
                     use ? in one of them"
                        .to_owned(),
                ))
            }
            (None, None) => {
                return Err(ScheduleError::Cron(
                    "day-of-month and day-of-week cannot both be ?; \
                     exactly one of them must be ?"
                        .to_owned(),
                ))
            }
        };
        Ok(Self {
            text: fields.join(" "),
            minutes,
            hours,
            days,
            months,
            years,
        })
    }

    /// The earliest wall-clock minute at or after `start` that the expression matches, or `None`
    /// if there is none up to the end of [`YEAR_MAX`]. `start`'s seconds are ignored (callers pass
    /// a whole minute).
    pub(super) fn next_local(&self, start: NaiveDateTime) -> Option<NaiveDateTime> {
        let (mut year, mut month, mut day, mut hour, mut minute) = match u32::try_from(start.year())
        {
            Ok(y) if y >= YEAR_MIN => (y, start.month(), start.day(), start.hour(), start.minute()),
            // Nothing a cron can name lies before its first year.
            _ => (YEAR_MIN, 1, 1, 0, 0),
        };
        // Each level either finds a member at or after its cursor, or advances the level above
        // and resets the ones below. Every pass moves the cursor forward, and the year set ends at
        // YEAR_MAX, so the loops end.
        'year: loop {
            let y = YEAR_MIN + self.years.next_from(year - YEAR_MIN)?;
            if y != year {
                (year, month, day, hour, minute) = (y, 1, 1, 0, 0);
            }
            'month: loop {
                let Some(m) = self.months.next_from(month) else {
                    (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0);
                    continue 'year;
                };
                if m != month {
                    (month, day, hour, minute) = (m, 1, 0, 0);
                }
                let days = self.days.matching_days(year as i32, month);
                'day: loop {
                    let Some(d) = days.next_from(day) else {
                        (month, day, hour, minute) = (month + 1, 1, 0, 0);
                        continue 'month;
                    };
                    if d != day {
                        (day, hour, minute) = (d, 0, 0);
                    }
                    loop {
                        let Some(h) = self.hours.next_from(hour) else {
                            (day, hour, minute) = (day + 1, 0, 0);
                            continue 'day;
                        };
                        if h != hour {
                            (hour, minute) = (h, 0);
                        }
                        let Some(mi) = self.minutes.next_from(minute) else {
                            (hour, minute) = (hour + 1, 0);
                            continue;
                        };
                        return NaiveDate::from_ymd_opt(year as i32, month, day)?
                            .and_hms_opt(hour, mi, 0);
                    }
                }
            }
        }
    }
}

impl DayRule {
    /// Days (bits 1–31) of `month` in `year` that this rule matches.
    fn matching_days(&self, year: i32, month: u32) -> Bits {
        let mut out = Bits::default();
        let Some(cal) = MonthCalendar::new(year, month) else {
            return out;
        };
        match self {
            Self::Month(DomRule::Days(days)) => {
                for d in 1..=cal.len {
                    if days.contains(d) {
                        out.insert(d);
                    }
                }
            }
            Self::Month(DomRule::Last) => out.insert(cal.len),
            Self::Month(DomRule::LastWeekday) => out.insert(match cal.weekday(cal.len) {
                7 => cal.len - 1,
                1 => cal.len - 2,
                _ => cal.len,
            }),
            Self::Month(DomRule::NearestWeekday(n)) => {
                let n = *n;
                // A day the month lacks (31W in April) matches nothing that month.
                if n <= cal.len {
                    out.insert(match cal.weekday(n) {
                        // Saturday: the Friday before, unless that is in the previous month.
                        7 if n == 1 => 3,
                        7 => n - 1,
                        // Sunday: the Monday after, unless that is in the next month.
                        1 if n == cal.len => n - 2,
                        1 => n + 1,
                        _ => n,
                    });
                }
            }
            Self::Week(DowRule::Days(weekdays)) => {
                for d in 1..=cal.len {
                    if weekdays.contains(cal.weekday(d)) {
                        out.insert(d);
                    }
                }
            }
            Self::Week(DowRule::Last(weekday)) => {
                let back = (cal.weekday(cal.len) + 7 - weekday) % 7;
                out.insert(cal.len - back);
            }
            Self::Week(DowRule::Nth {
                weekday,
                occurrence,
            }) => {
                let first = 1 + (weekday + 7 - cal.weekday(1)) % 7;
                let day = first + 7 * (occurrence - 1);
                if day <= cal.len {
                    out.insert(day);
                }
            }
        }
        out
    }
}

/// Length of a month and the weekday of its first day.
struct MonthCalendar {
    len: u32,
    /// Weekday of day 1, 1 = Sunday … 7 = Saturday.
    first_weekday: u32,
}

impl MonthCalendar {
    fn new(year: i32, month: u32) -> Option<Self> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)?
        };
        let len = u32::try_from(next.signed_duration_since(first).num_days()).ok()?;
        Some(Self {
            len,
            first_weekday: first.weekday().num_days_from_sunday() + 1,
        })
    }

    /// Weekday (1 = Sunday … 7 = Saturday) of `day`.
    fn weekday(&self, day: u32) -> u32 {
        (self.first_weekday - 1 + day - 1) % 7 + 1
    }
}

/// Rejects wildcards the field does not take, with a message naming the wildcard, before the
/// generic parser would report a less helpful "unrecognised value".
fn check_misplaced(field: Field, item: &str, original: &str) -> Result<(), ScheduleError> {
    let day_field = matches!(field, Field::DayOfMonth | Field::DayOfWeek);
    if item.contains('?') && !day_field {
        return Err(field_error(
            field,
            original,
            "? is only allowed in day-of-month and day-of-week",
        ));
    }
    if item.contains('#') && field != Field::DayOfWeek {
        return Err(field_error(
            field,
            original,
            "# is only allowed in day-of-week",
        ));
    }
    if item.contains('/') && field == Field::DayOfWeek {
        return Err(field_error(
            field,
            original,
            "/ is not allowed in day-of-week (it takes , - * ? L #)",
        ));
    }
    // `L`/`W` forms, told apart from names that merely contain those letters (JUL, WED).
    let body = item.trim_end_matches('W').trim_end_matches('L');
    let digits_or_empty = body.chars().all(|c| c.is_ascii_digit());
    let is_l_form = item == "L" || item == "LW" || (item.ends_with('L') && digits_or_empty);
    let is_w_form = item.ends_with('W') && (item == "LW" || (digits_or_empty && !body.is_empty()));
    if is_w_form && field != Field::DayOfMonth {
        return Err(field_error(
            field,
            original,
            "W is only allowed in day-of-month",
        ));
    }
    if (is_l_form || item.starts_with("L-")) && !day_field {
        return Err(field_error(
            field,
            original,
            "L is only allowed in day-of-month and day-of-week",
        ));
    }
    Ok(())
}

/// Splits a field into its comma-separated items, refusing empty ones (`1,,2`, `5,`).
fn items(field: Field, text: &str) -> Result<Vec<(String, String)>, ScheduleError> {
    text.split(',')
        .map(|item| {
            if item.is_empty() {
                Err(field_error(field, text, "empty value in list"))
            } else {
                Ok((item.to_ascii_uppercase(), item.to_owned()))
            }
        })
        .collect()
}

/// Minutes, hours, month and year, and the plain forms of the day fields: values, names, `*`,
/// ranges `a-b` (wrapping in cyclic fields), steps `a/n`, `a-b/n`, `*/n`, and lists of those.
fn parse_plain_field(field: Field, text: &str) -> Result<Bits, ScheduleError> {
    let items = items(field, text)?;
    let mut set = Bits::default();
    for (item, original) in &items {
        check_misplaced(field, item, original)?;
        if item == "*" && items.len() > 1 {
            return Err(field_error(
                field,
                text,
                "* cannot be combined with other values",
            ));
        }
        add_item(field, original, &mut set)?;
    }
    Ok(set)
}

/// Adds one list item; `original` keeps the user's letter case so messages quote it as written.
fn add_item(field: Field, item: &str, set: &mut Bits) -> Result<(), ScheduleError> {
    let original = item;
    let (min, max) = field.bounds();
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(field, step, original)?)),
        None => (item, None),
    };
    let (start, end, wrapped) = if range == "*" {
        (min, max, false)
    } else if let Some((a, b)) = range.split_once('-') {
        let a = parse_value(field, a, original)?;
        let b = parse_value(field, b, original)?;
        if a > b && !field.wraps() {
            return Err(field_error(
                field,
                original,
                format!("range start {a} is after range end {b}"),
            ));
        }
        (a, b, a > b)
    } else {
        let a = parse_value(field, range, original)?;
        // `a/n` runs from a to the field's end; a lone value is just itself.
        (a, if step.is_some() { max } else { a }, false)
    };
    let span = max - min + 1;
    let count = if wrapped {
        end + span - start + 1
    } else {
        end - start + 1
    };
    let step = step.unwrap_or(1);
    let mut offset = 0;
    while offset < count {
        let value = min + (start - min + offset) % span;
        set.insert(field.index(value));
        offset = offset.saturating_add(step);
    }
    Ok(())
}

fn parse_step(field: Field, step: &str, original: &str) -> Result<u32, ScheduleError> {
    if step.is_empty() || !step.chars().all(|c| c.is_ascii_digit()) {
        return Err(field_error(
            field,
            original,
            format!("step \"{step}\" must be a positive integer"),
        ));
    }
    match step.parse::<u32>() {
        Ok(0) => Err(field_error(field, original, "step must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(field_error(field, original, "step is too large")),
    }
}

/// A number or (in month and day-of-week) a three-letter name, checked against the field's bounds.
fn parse_value(field: Field, value: &str, original: &str) -> Result<u32, ScheduleError> {
    let (min, _) = field.bounds();
    if value.is_empty() {
        return Err(field_error(field, original, "missing value"));
    }
    if value.chars().all(|c| c.is_ascii_digit()) {
        let (lo, hi) = field.bounds();
        return match value.parse::<u32>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n),
            parsed => Err(field_error(
                field,
                original,
                format!(
                    "value {} is out of range {}",
                    parsed.map_or_else(|_| value.to_owned(), |n| n.to_string()),
                    field.range_text()
                ),
            )),
        };
    }
    if let Some(i) = field
        .names()
        .iter()
        .position(|name| name.eq_ignore_ascii_case(value))
    {
        return Ok(min + i as u32);
    }
    Err(field_error(
        field,
        original,
        format!(
            "unrecognised value \"{value}\" (expected {})",
            field.range_text()
        ),
    ))
}

/// Day-of-month: `?` (→ `None`), `L`, `LW`, `nW`, or plain values.
fn parse_dom(text: &str) -> Result<Option<DomRule>, ScheduleError> {
    const F: Field = Field::DayOfMonth;
    if text == "?" {
        return Ok(None);
    }
    let items = items(F, text)?;
    let special = items
        .iter()
        .any(|(item, _)| item.contains('L') || item.contains('W'));
    for (item, original) in &items {
        check_misplaced(F, item, original)?;
        if item.contains('?') {
            return Err(field_error(F, original, "? must be the whole field"));
        }
    }
    if !special {
        return Ok(Some(DomRule::Days(parse_plain_field(F, text)?)));
    }
    let [(item, original)] = items.as_slice() else {
        return Err(field_error(
            F,
            text,
            "L, LW and nW must be the only value in the field",
        ));
    };
    let original = original.as_str();
    match item.as_str() {
        "L" => Ok(Some(DomRule::Last)),
        "LW" => Ok(Some(DomRule::LastWeekday)),
        "W" => Err(field_error(
            F,
            original,
            "W needs a day before it (for example 15W, or LW)",
        )),
        other if other.starts_with("L-") => Err(field_error(
            F,
            original,
            "offsets from the last day (L-n) are not supported; use L or LW",
        )),
        other if other.ends_with('W') => {
            let day = &original[..original.len() - 1];
            if day.is_empty() || !day.chars().all(|c| c.is_ascii_digit()) {
                return Err(field_error(
                    F,
                    original,
                    "W takes a single day number (for example 15W); ranges, lists and steps are not allowed",
                ));
            }
            Ok(Some(DomRule::NearestWeekday(parse_value(
                F, day, original,
            )?)))
        }
        _ => Err(field_error(
            F,
            original,
            "L in day-of-month must stand alone (L) or be LW",
        )),
    }
}

/// Day-of-week: `?` (→ `None`), `L` (Saturday), `dL`, `d#n`, or plain values.
fn parse_dow(text: &str) -> Result<Option<DowRule>, ScheduleError> {
    const F: Field = Field::DayOfWeek;
    if text == "?" {
        return Ok(None);
    }
    let items = items(F, text)?;
    for (item, original) in &items {
        check_misplaced(F, item, original)?;
        if item.contains('?') {
            return Err(field_error(F, original, "? must be the whole field"));
        }
    }
    if text.matches('#').count() > 1 || (text.contains('#') && items.len() > 1) {
        // AWS: "If you use a '#' character, you can define only one expression in the
        // day-of-week field. For example, "3#1,6#3" is not valid."
        return Err(field_error(
            F,
            text,
            "only one # expression is allowed in day-of-week",
        ));
    }
    let is_last_form = |item: &str| {
        item == "L"
            || item.starts_with("L-")
            || (item.len() > 1
                && item.ends_with('L')
                && parse_value(F, &item[..item.len() - 1], item).is_ok())
    };
    if items.len() > 1 {
        if let Some((_, original)) = items.iter().find(|(item, _)| is_last_form(item)) {
            return Err(field_error(
                F,
                original,
                "L and nL must be the only value in the field",
            ));
        }
        return Ok(Some(DowRule::Days(parse_plain_field(F, text)?)));
    }
    let [(item, original)] = items.as_slice() else {
        return Ok(Some(DowRule::Days(parse_plain_field(F, text)?)));
    };
    let original = original.as_str();
    if let Some((weekday, occurrence)) = original.split_once('#') {
        let weekday = parse_value(F, weekday, original)?;
        let occurrence = match occurrence.parse::<u32>() {
            Ok(n @ 1..=5) if occurrence.chars().all(|c| c.is_ascii_digit()) => n,
            _ => return Err(field_error(F, original, "occurrence must be 1-5")),
        };
        return Ok(Some(DowRule::Nth {
            weekday,
            occurrence,
        }));
    }
    if item == "L" {
        // AWS only says L is "the last day of the week"; in the Quartz dialect its syntax follows,
        // L by itself in day-of-week means 7, i.e. every Saturday.
        let mut sat = Bits::default();
        sat.insert(7);
        return Ok(Some(DowRule::Days(sat)));
    }
    if item.starts_with("L-") {
        return Err(field_error(
            F,
            original,
            "offsets from the last day (L-n) are not supported in day-of-week; use nL",
        ));
    }
    if let Some(prefix) = original.strip_suffix(['L', 'l']).filter(|p| !p.is_empty()) {
        // `5L`, `FRIL`; a prefix that is no weekday (`JUL` is a month) falls through to the
        // generic parser so the message quotes the whole token.
        match parse_value(F, prefix, original) {
            Ok(weekday) => return Ok(Some(DowRule::Last(weekday))),
            Err(e) if prefix.chars().all(|c| c.is_ascii_digit()) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(Some(DowRule::Days(parse_plain_field(F, text)?)))
}
