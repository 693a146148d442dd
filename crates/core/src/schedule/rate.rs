//! `rate(value unit)`: a fixed period counted from the schedule's anchor.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use super::ScheduleError;

/// The unit of a rate expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// 60 seconds.
    Minute,
    /// 3,600 seconds.
    Hour,
    /// 86,400 seconds: a day is always 24 hours, also across daylight-saving changes, as
    /// EventBridge Scheduler documents for `rate(1 days)`.
    Day,
}

impl RateUnit {
    fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Self::Minute => "minutes",
            Self::Hour => "hours",
            Self::Day => "days",
        }
    }
}

/// A parsed `rate(value unit)`. The value is at least 1 and the unit at least a minute, so no rate
/// is faster than one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateExpression {
    value: u32,
    unit: RateUnit,
}

impl RateExpression {
    /// The number of units between fires (at least 1).
    pub fn value(&self) -> u32 {
        self.value
    }

    /// The unit.
    pub fn unit(&self) -> RateUnit {
        self.unit
    }

    /// Time between two fires.
    pub fn period(&self) -> TimeDelta {
        TimeDelta::seconds(self.period_seconds())
    }

    fn period_seconds(&self) -> i64 {
        i64::from(self.value) * self.unit.seconds()
    }

    /// Parses the text between `rate(` and `)`.
    ///
    /// AWS pairs the value with the unit's number: `rate(1 minute)` and `rate(5 minutes)` are
    /// valid, `rate(1 minutes)` and `rate(5 minute)` are refused.
    pub(super) fn parse_body(body: &str) -> Result<Self, ScheduleError> {
        let parts: Vec<&str> = body.split_whitespace().collect();
        let [value_text, unit_text] = parts.as_slice() else {
            return Err(ScheduleError::Rate(format!(
                "expected rate(value unit), found {} part(s) in \"{body}\"",
                parts.len()
            )));
        };
        let not_positive =
            || ScheduleError::Rate(format!("value \"{value_text}\" must be a positive integer"));
        if !value_text.chars().all(|c| c.is_ascii_digit()) {
            return Err(not_positive());
        }
        let value = match value_text.parse::<u32>() {
            Ok(0) => return Err(not_positive()),
            Ok(v) => v,
            Err(_) => {
                return Err(ScheduleError::Rate(format!(
                    "value \"{value_text}\" is too large"
                )))
            }
        };
        let unit = [RateUnit::Minute, RateUnit::Hour, RateUnit::Day]
            .into_iter()
            .find(|u| *unit_text == u.singular() || *unit_text == u.plural())
            .ok_or_else(|| {
                ScheduleError::Rate(format!(
                    "unit \"{unit_text}\" must be minute(s), hour(s) or day(s)"
                ))
            })?;
        if value == 1 && *unit_text != unit.singular() {
            return Err(ScheduleError::Rate(format!(
                "unit \"{unit_text}\": a value of 1 takes the singular unit \"{}\"",
                unit.singular()
            )));
        }
        if value != 1 && *unit_text != unit.plural() {
            return Err(ScheduleError::Rate(format!(
                "unit \"{unit_text}\": a value of {value} takes the plural unit \"{}\"",
                unit.plural()
            )));
        }
        Ok(Self { value, unit })
    }

    /// The first of `anchor`, `anchor + period`, `anchor + 2·period`, … strictly after `after`;
    /// `None` only past the end of representable time.
    pub(super) fn next_after(
        &self,
        anchor: DateTime<Utc>,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if after < anchor {
            return Some(anchor);
        }
        let period = self.period_seconds();
        // Whole periods elapsed; `num_seconds` truncates, which is a floor for a non-negative span.
        let elapsed = after.signed_duration_since(anchor).num_seconds();
        let k = elapsed / period + 1;
        anchor.checked_add_signed(TimeDelta::try_seconds(k.checked_mul(period)?)?)
    }
}

impl fmt::Display for RateExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.value == 1 {
            self.unit.singular()
        } else {
            self.unit.plural()
        };
        write!(f, "rate({} {unit})", self.value)
    }
}
