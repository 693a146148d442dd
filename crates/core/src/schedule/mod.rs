//! EventBridge-compatible schedule expressions (`lambda-compat.md` §10.4): parsing, validation and
//! "when does this fire next".
//!
//! Three forms are accepted, spelled as AWS spells them (lower-case keyword, no space before `(`):
//!
//! - `rate(value unit)`: `value` a positive integer; `unit` is `minute`, `hour` or `day` when the
//!   value is 1 and `minutes`, `hours` or `days` otherwise (AWS refuses `rate(1 minutes)` and
//!   `rate(5 minute)`). Fires at `anchor + k·period` for `k = 0, 1, 2, …`, where the anchor is the
//!   schedule's start (its creation time, or EventBridge Scheduler's `StartDate`). A day is always
//!   24 hours, whatever the time zone does, as EventBridge Scheduler documents.
//! - `cron(Minutes Hours Day-of-month Month Day-of-week Year)`: all six fields required, read as
//!   wall-clock time in the schedule's time zone at minute resolution, so nothing fires more often
//!   than once a minute. Wildcards per field follow the AWS table: `, - * /` everywhere except
//!   that day-of-week takes no `/`; `?` only in the day fields, and exactly one of them must be
//!   `?`; `L`, `LW` and `nW` in day-of-month; `L` (Saturday), `nL` (last weekday n of the month)
//!   and `d#n` (n-th weekday d, n 1–5, one `#` per field) in day-of-week. Weekdays run 1 = SUN to
//!   7 = SAT. Names (`JAN`–`DEC`, `SUN`–`SAT`) are case-insensitive. Ranges in cyclic fields may
//!   wrap (`FRI-MON`, `22-2`, `NOV-FEB`), as in the Quartz dialect AWS follows; year ranges may
//!   not. `a/n` runs from `a` to the field's end; `a-b/n` and `*/n` step through the range.
//!   `nW` is the weekday nearest day n without leaving the month (1W on a Saturday is Monday the
//!   3rd; 31W matches nothing in a 30-day month). Offsets from the last day (`L-3`) are refused:
//!   AWS does not document them.
//! - `at(yyyy-mm-ddThh:mm:ss)`: a one-time schedule (EventBridge Scheduler), read as wall-clock
//!   time in the schedule's time zone.
//!
//! A [`Schedule`] joins an expression with an IANA time zone (default UTC) and the rate anchor.
//! [`Schedule::next_after`] searches field by field (year → month → day → hour → minute), so a
//! sparse or impossible cron (`0 0 30 2 ? *`) is answered in microseconds; the search stops at the
//! end of 2199, the last year a cron can name.
//!
//! # Daylight-saving time
//!
//! Cron and `at` times are wall-clock times. For cron this module does what the EventBridge
//! Scheduler User Guide ("Daylight savings time on EventBridge Scheduler") documents: "When time
//! shifts forward in the Spring, if a cron expression falls on a non-existent date and time, your
//! schedule invocation is skipped. When time shifts backwards in the Fall, your schedule runs only
//! once and does not repeat its invocation" — for `cron(30 2 * * ? *)` in America/Los_Angeles the
//! spring-forward day has no run, and on the fall-back day it runs "once at 2:30 a.m. before the
//! shift occurs". So a local time inside a gap does not fire at all, and a repeated local time
//! fires at its first (earlier) instant only. A consequence: during a repeated hour, a cron such
//! as `*/5 * * * ? *` pauses until the wall clock passes the end of the repeat.
//!
//! The guide says nothing about `at` times; since a one-time schedule that never runs helps no
//! one, an `at` time inside a gap fires at the first instant after the gap, and a repeated one at
//! its first instant. UTC schedules are unaffected by any of this.

mod cron;
mod event;
mod rate;
pub mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use thiserror::Error;

pub use cron::CronExpression;
pub use event::scheduled_event;
pub use rate::{RateExpression, RateUnit};
pub use store::{ScheduleRule, ScheduleStore};

/// Why a schedule expression or time zone was refused. `Display` is the human message; callers
/// wrap it into a `ValidationException`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// Not `rate(…)`, `cron(…)` or `at(…)`.
    #[error(
        "invalid schedule expression \"{0}\": expected rate(value unit), \
         cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)"
    )]
    UnknownForm(String),
    /// A malformed `rate(…)`.
    #[error("invalid rate expression: {0}")]
    Rate(String),
    /// A `cron(…)` whose shape is wrong (field count, the `?` rule).
    #[error("invalid cron expression: {0}")]
    Cron(String),
    /// A `cron(…)` field holding a token it may not hold.
    #[error("invalid cron expression: {field} field \"{token}\": {reason}")]
    CronField {
        /// `minutes`, `hours`, `day-of-month`, `month`, `day-of-week` or `year`.
        field: &'static str,
        /// The offending item, or the whole field when the field as a whole is wrong.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A malformed `at(…)`.
    #[error("invalid at expression: {0}")]
    At(String),
    /// A time zone name the IANA database does not know.
    #[error("unknown time zone \"{0}\": expected an IANA name such as America/New_York or UTC")]
    TimeZone(String),
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// `rate(value unit)`.
    Rate(RateExpression),
    /// `cron(…)`.
    Cron(CronExpression),
    /// `at(…)`: the wall-clock time, to be read in the schedule's time zone.
    At(NaiveDateTime),
}

impl ScheduleExpression {
    /// Parses and validates `rate(…)`, `cron(…)` or `at(…)`.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        if let Some(rest) = text.strip_prefix("rate(") {
            let body = rest.strip_suffix(')').ok_or_else(|| {
                ScheduleError::Rate(format!("\"{text}\" is missing its closing parenthesis"))
            })?;
            return RateExpression::parse_body(body).map(Self::Rate);
        }
        if let Some(rest) = text.strip_prefix("cron(") {
            let body = rest.strip_suffix(')').ok_or_else(|| {
                ScheduleError::Cron(format!("\"{text}\" is missing its closing parenthesis"))
            })?;
            return CronExpression::parse_body(body).map(Self::Cron);
        }
        if let Some(rest) = text.strip_prefix("at(") {
            let body = rest.strip_suffix(')').ok_or_else(|| {
                ScheduleError::At(format!("\"{text}\" is missing its closing parenthesis"))
            })?;
            return parse_at(body).map(Self::At);
        }
        Err(ScheduleError::UnknownForm(text.to_owned()))
    }
}

impl FromStr for ScheduleExpression {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rate(rate) => rate.fmt(f),
            Self::Cron(cron) => cron.fmt(f),
            Self::At(at) => write!(f, "at({})", at.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

/// `yyyy-mm-ddThh:mm:ss`, exactly: chrono's parser alone would also take one-digit fields.
fn parse_at(body: &str) -> Result<NaiveDateTime, ScheduleError> {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let shaped = body.len() == SHAPE.len()
        && body.bytes().zip(SHAPE).all(|(c, want)| match want {
            b'd' => c.is_ascii_digit(),
            other => c == *other,
        });
    if !shaped {
        return Err(ScheduleError::At(format!(
            "\"{body}\" is not of the form yyyy-mm-ddThh:mm:ss"
        )));
    }
    NaiveDateTime::parse_from_str(body, "%Y-%m-%dT%H:%M:%S")
        .map_err(|_| ScheduleError::At(format!("\"{body}\" is not a valid date and time")))
}

/// Parses an IANA time zone name (`America/New_York`, `Europe/Berlin`, `UTC`). Names are
/// case-sensitive, as in the IANA database.
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::TimeZone(name.to_owned()))
}

/// An expression, the time zone its wall-clock times are read in, and the instant rate schedules
/// count from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    expression: ScheduleExpression,
    timezone: Tz,
    anchor: DateTime<Utc>,
}

impl Schedule {
    /// Parses `expression` and `timezone` (`None` = UTC). `anchor` is where a rate schedule
    /// starts counting (its first fire); cron and `at` schedules ignore it.
    pub fn new(
        expression: &str,
        timezone: Option<&str>,
        anchor: DateTime<Utc>,
    ) -> Result<Self, ScheduleError> {
        let expression = ScheduleExpression::parse(expression)?;
        let timezone = timezone.map_or(Ok(Tz::UTC), parse_timezone)?;
        Ok(Self::from_parts(expression, timezone, anchor))
    }

    /// Joins already-parsed parts.
    pub fn from_parts(expression: ScheduleExpression, timezone: Tz, anchor: DateTime<Utc>) -> Self {
        Self {
            expression,
            timezone,
            anchor,
        }
    }

    /// The expression.
    pub fn expression(&self) -> &ScheduleExpression {
        &self.expression
    }

    /// The time zone cron and `at` times are read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Where a rate schedule starts counting.
    pub fn anchor(&self) -> DateTime<Utc> {
        self.anchor
    }

    /// The first fire strictly after `after`, or `None` if the schedule never fires again (a
    /// passed `at` time, a cron whose years have ended or whose dates never occur).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.expression {
            ScheduleExpression::Rate(rate) => rate.next_after(self.anchor, after),
            ScheduleExpression::Cron(cron) => self.next_cron(cron, after),
            ScheduleExpression::At(at) => self.at_instant(*at).filter(|t| *t > after),
        }
    }

    /// The first fire in `(after, until]`, if any: what a scheduler coming back up runs once for
    /// the fires it missed while down (`after` = the last fire it handled, `until` = now).
    pub fn first_fire_in(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.next_after(after).filter(|t| *t <= until)
    }

    /// The fires strictly after `after`, in order (for previews such as "the next 10 runs").
    /// Endless for rate schedules: bound it with `take` or `take_while`.
    pub fn fires_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), move |t| self.next_after(*t))
    }

    fn next_cron(&self, cron: &CronExpression, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.timezone).naive_local();
        // Wall-clock minutes up to `local`'s own minute are at or before `after` (the earliest
        // instant of a wall-clock time never decreases as the wall clock advances), so start at
        // the next one.
        let mut start = local
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(TimeDelta::minutes(1))?;
        loop {
            let candidate = cron.next_local(start)?;
            // `earliest` is the only occurrence of an ordinary time and the first of a repeated
            // one; a time in a gap has none and is skipped (see the module docs).
            if let Some(fire) = self.timezone.from_local_datetime(&candidate).earliest() {
                let fire = fire.with_timezone(&Utc);
                // A repeated wall-clock time whose first instant precedes `after` (because
                // `after` lies in the repeat) was already due once; keep looking.
                if fire > after {
                    return Some(fire);
                }
            }
            start = candidate.checked_add_signed(TimeDelta::minutes(1))?;
        }
    }

    /// The instant of an `at` time in the schedule's zone.
    fn at_instant(&self, at: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut local = at;
        // A gap is at most a day long (Samoa, 2011); two days of minutes bounds the walk.
        for _ in 0..2 * 24 * 60 {
            if let Some(t) = self.timezone.from_local_datetime(&local).earliest() {
                return Some(t.with_timezone(&Utc));
            }
            // Inside a gap: move to the next whole minute until the wall clock exists again,
            // which is the instant the gap ends.
            local = local
                .with_second(0)?
                .with_nanosecond(0)?
                .checked_add_signed(TimeDelta::minutes(1))?;
        }
        None
    }
}
