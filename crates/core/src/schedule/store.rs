//! Durable schedules: a [`ScheduleRule`] says when to invoke which function with what, and a
//! [`ScheduleStore`] keeps the rules (and how far each has fired) across restarts.
//!
//! The rules follow EventBridge Scheduler's model as far as a Lambda target needs it: a name of
//! the `default` schedule group, a `rate(…)`, `cron(…)` or `at(…)` expression read in an optional
//! IANA time zone, a target function, an optional constant JSON input (otherwise the function
//! receives the Scheduled Event payload), an on/off state and a description. What fires them
//! lives in the triggers crate; what is stored here is only the rule and its fire history,
//! `last_fire`.
//!
//! With the `test-util` feature, [`MemoryScheduleStore`] is the in-memory reference
//! implementation of the [`ScheduleStore`] contract.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::Schedule;
use crate::arn::AccountContext;
use crate::error::{ServiceError, StoreError};
use crate::invoke::ASYNC_PAYLOAD_MAX;
use crate::names::FunctionRef;

/// Longest schedule name.
pub const NAME_MAX: usize = 64;
/// Longest schedule expression.
pub const EXPRESSION_MAX: usize = 256;
/// Longest time zone name.
pub const TIMEZONE_MAX: usize = 50;
/// Longest description.
pub const DESCRIPTION_MAX: usize = 512;
/// Longest target reference (function name or ARN).
pub const TARGET_MAX: usize = 1600;
/// Widest flexible time window, in minutes (one day).
pub const FLEXIBLE_WINDOW_MAX_MINUTES: u32 = 1440;
/// The one schedule group Nimbus has; every rule belongs to it.
pub const DEFAULT_GROUP: &str = "default";

/// The pattern of an IAM role ARN, as EventBridge Scheduler's API model states it.
const ROLE_ARN_PATTERN: &str = r"^arn:aws(-[a-z]+)?:iam::\d{12}:role/[\w+=,.@/-]+$";

static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // A constant pattern; the tests compile it.
    Regex::new(ROLE_ARN_PATTERN).unwrap()
});

/// One durable schedule: when to invoke which function, with what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRule {
    /// 1–64 characters of `[0-9a-zA-Z-_.]`, unique on this server.
    pub name: String,
    /// `rate(…)`, `cron(…)` or `at(…)`, as the caller wrote it.
    pub expression: String,
    /// IANA time zone cron and `at` times are read in; `None` = UTC.
    pub timezone: Option<String>,
    /// The function to invoke: a name or a Lambda function ARN, optionally qualified
    /// (`name:alias`, `…:function:name:3`).
    pub target: String,
    /// The IAM role EventBridge Scheduler would assume (`Target.RoleArn`). Nimbus keeps it for
    /// clients that read it back; it grants nothing.
    pub role_arn: Option<String>,
    /// Constant JSON the function receives on every fire; `None` = the EventBridge Scheduled
    /// Event payload.
    pub input: Option<String>,
    /// Disabled rules are kept but never fire.
    pub enabled: bool,
    /// `FlexibleTimeWindow` of mode `FLEXIBLE`: the width in minutes (1–1440) of the window a
    /// fire may land in. `None` = mode `OFF`. Nimbus always fires at the window's start, which
    /// is inside every window.
    pub flexible_window_minutes: Option<u32>,
    /// Free text, at most 512 characters.
    pub description: String,
    /// When the rule was created; `rate(…)` schedules count their periods from here.
    pub created_at: DateTime<Utc>,
    /// When the rule was last created or updated.
    pub updated_at: DateTime<Utc>,
    /// The latest fire time that has been dealt with: fires at or before it never run (again).
    /// Set by the runner after each fire, and by [`ScheduleRule::updated`] when a rule comes
    /// back on or changes its schedule. `None` = never fired.
    pub last_fire: Option<DateTime<Utc>>,
}

impl ScheduleRule {
    /// An enabled rule with no time zone, input, role, window or description, created (and
    /// last updated) at `created_at` and never fired.
    pub fn new(
        name: impl Into<String>,
        expression: impl Into<String>,
        target: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            name: name.into(),
            expression: expression.into(),
            timezone: None,
            target: target.into(),
            role_arn: None,
            input: None,
            enabled: true,
            flexible_window_minutes: None,
            description: String::new(),
            created_at,
            updated_at: created_at,
            last_fire: None,
        }
    }

    /// Check every field and parse the schedule. Errors are `ValidationException`s whose
    /// message names the field and what is wrong with it; a bad expression or time zone carries
    /// the [`ScheduleError`](super::ScheduleError) message verbatim.
    pub fn validate(&self) -> Result<Schedule, ServiceError> {
        validate_name(&self.name)?;
        if self.expression.is_empty() || self.expression.len() > EXPRESSION_MAX {
            return Err(ServiceError::constraint(
                &self.expression,
                "scheduleExpression",
                &format!("Member must have length between 1 and {EXPRESSION_MAX}"),
            ));
        }
        if let Some(tz) = &self.timezone {
            if tz.is_empty() || tz.len() > TIMEZONE_MAX {
                return Err(ServiceError::constraint(
                    tz,
                    "scheduleExpressionTimezone",
                    &format!("Member must have length between 1 and {TIMEZONE_MAX}"),
                ));
            }
        }
        let schedule = self
            .schedule()
            .map_err(|err| ServiceError::Validation(err.to_string()))?;
        self.function_ref()?;
        if let Some(role) = &self.role_arn {
            if role.len() > TARGET_MAX || !ROLE_ARN.is_match(role) {
                return Err(ServiceError::constraint(
                    role,
                    "target.roleArn",
                    &format!("Member must satisfy regular expression pattern: {ROLE_ARN_PATTERN}"),
                ));
            }
        }
        if let Some(input) = &self.input {
            validate_input(input)?;
        }
        if self.description.chars().count() > DESCRIPTION_MAX {
            return Err(ServiceError::Validation(format!(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: \
                 Member must have length less than or equal to {DESCRIPTION_MAX}"
            )));
        }
        if let Some(minutes) = self.flexible_window_minutes {
            if !(1..=FLEXIBLE_WINDOW_MAX_MINUTES).contains(&minutes) {
                return Err(ServiceError::constraint(
                    minutes,
                    "flexibleTimeWindow.maximumWindowInMinutes",
                    &format!("Member must have value between 1 and {FLEXIBLE_WINDOW_MAX_MINUTES}"),
                ));
            }
        }
        Ok(schedule)
    }

    /// The parsed schedule: the expression in the rule's time zone, rates anchored at
    /// `created_at`.
    pub fn schedule(&self) -> Result<Schedule, super::ScheduleError> {
        Schedule::new(&self.expression, self.timezone.as_deref(), self.created_at)
    }

    /// The target as a function reference.
    pub fn function_ref(&self) -> Result<FunctionRef, ServiceError> {
        if self.target.len() > TARGET_MAX {
            return Err(ServiceError::constraint(
                &self.target,
                "target.arn",
                &format!("Member must have length between 1 and {TARGET_MAX}"),
            ));
        }
        FunctionRef::parse(&self.target).map_err(|_| {
            ServiceError::Validation(format!(
                "Target \"{}\" is not a function name or Lambda function ARN \
                 (arn:aws:lambda:REGION:ACCOUNT:function:NAME, optionally followed by \
                 :VERSION or :ALIAS)",
                self.target
            ))
        })
    }

    /// `arn:aws:scheduler:<region>:<account>:schedule/default/<name>`.
    pub fn arn(&self, ctx: &AccountContext) -> String {
        schedule_arn(ctx, &self.name)
    }

    /// The instant fires are counted from: the later of `created_at` and `last_fire`. The next
    /// fire is the schedule's first fire strictly after it.
    pub fn resume_after(&self) -> DateTime<Utc> {
        self.last_fire
            .map_or(self.created_at, |last| last.max(self.created_at))
    }

    /// This rule with its settings replaced by `new`'s, as UpdateSchedule replaces a schedule
    /// whole. The name, creation time (so a rate's anchor) and fire history stay; `updated_at`
    /// becomes `now`.
    ///
    /// When the update turns a disabled rule on, or changes when it fires (expression or time
    /// zone), every fire due up to `now` counts as dealt with: a rule does not "catch up" on
    /// fires from while it was off, or from a schedule it no longer has.
    pub fn updated(&self, new: ScheduleRule, now: DateTime<Utc>) -> ScheduleRule {
        let reschedules = (new.enabled && !self.enabled)
            || new.expression != self.expression
            || new.timezone != self.timezone;
        let last_fire = if reschedules {
            Some(self.last_fire.map_or(now, |last| last.max(now)))
        } else {
            self.last_fire
        };
        ScheduleRule {
            name: self.name.clone(),
            created_at: self.created_at,
            updated_at: now,
            last_fire,
            ..new
        }
    }
}

/// `arn:aws:scheduler:<region>:<account>:schedule/default/<name>`.
pub fn schedule_arn(ctx: &AccountContext, name: &str) -> String {
    format!(
        "arn:aws:scheduler:{}:{}:schedule/{DEFAULT_GROUP}/{name}",
        ctx.region, ctx.account_id
    )
}

/// A schedule name: 1–64 characters of `[0-9a-zA-Z-_.]`.
pub fn validate_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(ServiceError::constraint(
            name,
            "name",
            &format!("Member must have length between 1 and {NAME_MAX}"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ServiceError::constraint(
            name,
            "name",
            "Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$",
        ));
    }
    Ok(())
}

/// Constant input: non-empty, well-formed JSON (a Lambda target requires it), and small enough
/// for an asynchronous invocation.
fn validate_input(input: &str) -> Result<(), ServiceError> {
    if input.is_empty() {
        return Err(ServiceError::Validation(
            "1 validation error detected: Value at 'target.input' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
                .to_owned(),
        ));
    }
    if input.len() > ASYNC_PAYLOAD_MAX {
        return Err(ServiceError::Validation(format!(
            "Target input is {} bytes; an asynchronous invocation takes at most {ASYNC_PAYLOAD_MAX}",
            input.len()
        )));
    }
    serde_json::from_str::<serde_json::Value>(input).map_err(|err| {
        ServiceError::Validation(format!(
            "Target input must be well-formed JSON for a Lambda target: {err}"
        ))
    })?;
    Ok(())
}

/// Durable storage of schedule rules.
///
/// Every mutation is durable when the call returns. `last_fire` only ever moves forward: a
/// write that carries an earlier `last_fire` than the stored one keeps the stored one, so a
/// slow reader writing back an old copy cannot make a fire run twice.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// Store a new rule; [`StoreError::AlreadyExists`] if the name is taken.
    async fn create(&self, rule: &ScheduleRule) -> Result<(), StoreError>;

    /// The rule named `name`, if any.
    async fn get(&self, name: &str) -> Result<Option<ScheduleRule>, StoreError>;

    /// Every rule, in name order (byte order of the names).
    async fn list(&self) -> Result<Vec<ScheduleRule>, StoreError>;

    /// Replace the rule of the same name; [`StoreError::NotFound`] if there is none. Its
    /// `last_fire` becomes the later of the stored and the given one (`None` keeps the stored).
    async fn update(&self, rule: &ScheduleRule) -> Result<(), StoreError>;

    /// Remove the rule; [`StoreError::NotFound`] if there is none.
    async fn delete(&self, name: &str) -> Result<(), StoreError>;

    /// The fire at `at` has been dealt with: `last_fire` becomes the later of itself and `at`.
    /// [`StoreError::NotFound`] if the rule is gone.
    async fn record_fire(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
}

#[cfg(feature = "test-util")]
pub use memory::MemoryScheduleStore;

#[cfg(feature = "test-util")]
mod memory {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, PoisonError};

    use super::*;

    /// [`ScheduleStore`] in memory: the reference implementation of the contract.
    #[derive(Debug, Default)]
    pub struct MemoryScheduleStore {
        rules: Mutex<BTreeMap<String, ScheduleRule>>,
    }

    /// The later of two optional instants.
    fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }

    impl MemoryScheduleStore {
        fn rules(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ScheduleRule>> {
            self.rules.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    #[async_trait]
    impl ScheduleStore for MemoryScheduleStore {
        async fn create(&self, rule: &ScheduleRule) -> Result<(), StoreError> {
            let mut rules = self.rules();
            if rules.contains_key(&rule.name) {
                return Err(StoreError::AlreadyExists);
            }
            rules.insert(rule.name.clone(), rule.clone());
            Ok(())
        }

        async fn get(&self, name: &str) -> Result<Option<ScheduleRule>, StoreError> {
            Ok(self.rules().get(name).cloned())
        }

        async fn list(&self) -> Result<Vec<ScheduleRule>, StoreError> {
            Ok(self.rules().values().cloned().collect())
        }

        async fn update(&self, rule: &ScheduleRule) -> Result<(), StoreError> {
            let mut rules = self.rules();
            let stored = rules.get_mut(&rule.name).ok_or(StoreError::NotFound)?;
            let last_fire = later(stored.last_fire, rule.last_fire);
            *stored = ScheduleRule {
                last_fire,
                ..rule.clone()
            };
            Ok(())
        }

        async fn delete(&self, name: &str) -> Result<(), StoreError> {
            self.rules()
                .remove(name)
                .map(drop)
                .ok_or(StoreError::NotFound)
        }

        async fn record_fire(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
            let mut rules = self.rules();
            let stored = rules.get_mut(name).ok_or(StoreError::NotFound)?;
            stored.last_fire = later(stored.last_fire, Some(at));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant is RFC 3339")
            .with_timezone(&Utc)
    }

    fn rule() -> ScheduleRule {
        ScheduleRule::new(
            "nightly",
            "cron(0 3 * * ? *)",
            "f",
            t("2026-01-01T00:00:00Z"),
        )
    }

    fn message(rule: &ScheduleRule) -> String {
        rule.validate()
            .expect_err("rule should be refused")
            .message()
            .to_owned()
    }

    #[test]
    fn a_plain_rule_is_valid_and_parses_its_schedule() {
        let schedule = rule().validate().expect("valid");
        assert_eq!(
            schedule.next_after(t("2026-01-01T00:00:00Z")),
            Some(t("2026-01-01T03:00:00Z"))
        );
        let mut full = rule();
        full.timezone = Some("Europe/Berlin".into());
        full.target = "arn:aws:lambda:us-east-1:123456789012:function:f:live".into();
        full.role_arn = Some("arn:aws:iam::123456789012:role/service-role/sched".into());
        full.input = Some(r#"{"k":[1,2]}"#.into());
        full.flexible_window_minutes = Some(15);
        full.description = "d".repeat(DESCRIPTION_MAX);
        full.validate().expect("valid");
    }

    #[test]
    fn names_follow_the_scheduler_pattern() {
        for good in ["a", "my.rule-1_x", &"n".repeat(64)] {
            validate_name(good).expect(good);
        }
        for bad in ["", "has space", "slash/", "ü", &"n".repeat(65)] {
            let err = validate_name(bad).expect_err(bad);
            assert_eq!(err.error_type(), "ValidationException");
            assert!(err.message().contains("'name'"), "{}", err.message());
        }
    }

    #[test]
    fn bad_expressions_and_zones_carry_the_schedule_error() {
        let mut r = rule();
        r.expression = "cron(0 3 * * * *)".into();
        let expected = super::super::ScheduleExpression::parse("cron(0 3 * * * *)")
            .expect_err("refused")
            .to_string();
        assert!(
            expected.starts_with("invalid cron expression"),
            "{expected}"
        );
        assert_eq!(message(&r), expected);
        r.expression = "rate(5 minute)".into();
        assert!(message(&r).starts_with("invalid rate expression"));
        r.expression = String::new();
        assert!(message(&r).contains("scheduleExpression"));
        let mut r = rule();
        r.timezone = Some("Mars/Olympus".into());
        assert!(message(&r).contains("unknown time zone \"Mars/Olympus\""));
    }

    #[test]
    fn targets_inputs_roles_windows_and_descriptions_are_checked() {
        let mut r = rule();
        r.target = "arn:aws:s3:::bucket".into();
        assert!(message(&r).contains("is not a function name or Lambda function ARN"));
        let mut r = rule();
        r.input = Some("{not json".into());
        assert!(message(&r).contains("well-formed JSON"));
        r.input = Some(String::new());
        assert!(message(&r).contains("target.input"));
        let mut r = rule();
        r.role_arn = Some("role".into());
        assert!(message(&r).contains("target.roleArn"));
        let mut r = rule();
        r.flexible_window_minutes = Some(0);
        assert!(message(&r).contains("maximumWindowInMinutes"));
        r.flexible_window_minutes = Some(1441);
        assert!(message(&r).contains("maximumWindowInMinutes"));
        let mut r = rule();
        r.description = "d".repeat(DESCRIPTION_MAX + 1);
        assert!(message(&r).contains("description"));
    }

    #[test]
    fn arn_and_resume_point() {
        let r = rule();
        assert_eq!(
            r.arn(&AccountContext::default()),
            "arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly"
        );
        assert_eq!(r.resume_after(), r.created_at);
        let mut fired = r.clone();
        fired.last_fire = Some(t("2026-02-01T03:00:00Z"));
        assert_eq!(fired.resume_after(), t("2026-02-01T03:00:00Z"));
        // A last fire before creation (a clock set back) never moves the start earlier.
        fired.last_fire = Some(t("2025-01-01T00:00:00Z"));
        assert_eq!(fired.resume_after(), r.created_at);
    }

    #[test]
    fn updates_keep_identity_and_skip_fires_from_while_off() {
        let now = t("2026-03-01T12:00:00Z");
        let mut old = rule();
        old.last_fire = Some(t("2026-02-01T03:00:00Z"));

        // Same schedule, new description: history kept.
        let mut new = ScheduleRule::new("ignored", &old.expression, "g", now);
        new.description = "new".into();
        let updated = old.updated(new, now);
        assert_eq!(updated.name, "nightly");
        assert_eq!(updated.created_at, old.created_at);
        assert_eq!(updated.updated_at, now);
        assert_eq!(updated.target, "g");
        assert_eq!(updated.last_fire, old.last_fire);

        // A new expression: fires before now count as dealt with.
        let new = ScheduleRule::new("nightly", "rate(1 hour)", "f", now);
        assert_eq!(old.updated(new, now).last_fire, Some(now));

        // Turned back on after being off: likewise.
        let mut off = old.clone();
        off.enabled = false;
        let new = ScheduleRule::new("nightly", &old.expression, "f", now);
        assert_eq!(off.updated(new, now).last_fire, Some(now));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let mut r = rule();
        r.input = Some("{}".into());
        r.last_fire = Some(t("2026-01-02T03:00:00Z"));
        let json = serde_json::to_string(&r).expect("serialize");
        assert_eq!(
            serde_json::from_str::<ScheduleRule>(&json).expect("parse"),
            r
        );
    }
}
