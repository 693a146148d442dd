//! Behaviour of schedule expressions: one test per rule, expected instants worked out by hand from
//! the calendar (2026-01-01 is a Thursday, 2026-03-08 and 2026-11-01 are the US DST switches,
//! 2026-03-29 and 2026-10-25 the EU ones).

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant is RFC 3339")
        .with_timezone(&Utc)
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn schedule(expr: &str, tz: &str) -> Schedule {
    Schedule::new(expr, Some(tz), t("2026-01-01T00:00:00Z")).expect("valid schedule")
}

/// The next `n` fires of `expr` in `tz` strictly after `after`.
fn fires_in(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    schedule(expr, tz)
        .fires_after(t(after))
        .take(n)
        .map(fmt)
        .collect()
}

fn fires(expr: &str, after: &str, n: usize) -> Vec<String> {
    fires_in(expr, "UTC", after, n)
}

fn next(expr: &str, after: &str) -> Option<String> {
    schedule(expr, "UTC").next_after(t(after)).map(fmt)
}

fn err(expr: &str) -> String {
    ScheduleExpression::parse(expr)
        .expect_err("expression should be refused")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Plain fields and wildcards

#[test]
fn fixed_daily_time_fires_strictly_after() {
    assert_eq!(
        next("cron(0 10 * * ? *)", "2026-01-15T09:59:00Z").as_deref(),
        Some("2026-01-15T10:00:00Z")
    );
    // Exactly at a fire: that fire is not "after".
    assert_eq!(
        next("cron(0 10 * * ? *)", "2026-01-15T10:00:00Z").as_deref(),
        Some("2026-01-16T10:00:00Z")
    );
    // Seconds into the fire minute: also past it.
    assert_eq!(
        next("cron(0 10 * * ? *)", "2026-01-15T10:00:30Z").as_deref(),
        Some("2026-01-16T10:00:00Z")
    );
    // A second before: the fire is still ahead.
    assert_eq!(
        next("cron(0 10 * * ? *)", "2026-01-15T09:59:59Z").as_deref(),
        Some("2026-01-15T10:00:00Z")
    );
}

#[test]
fn question_mark_in_day_of_month_with_star_day_of_week() {
    assert_eq!(
        fires("cron(15 12 ? * * *)", "2026-01-31T13:00:00Z", 2),
        ["2026-02-01T12:15:00Z", "2026-02-02T12:15:00Z"]
    );
}

#[test]
fn comma_lists_in_minutes_and_hours() {
    assert_eq!(
        fires("cron(0,30 8,17 * * ? *)", "2026-01-15T08:10:00Z", 4),
        [
            "2026-01-15T08:30:00Z",
            "2026-01-15T17:00:00Z",
            "2026-01-15T17:30:00Z",
            "2026-01-16T08:00:00Z"
        ]
    );
}

#[test]
fn dash_range_in_hours() {
    assert_eq!(
        fires("cron(0 9-11 * * ? *)", "2026-01-15T10:30:00Z", 3),
        [
            "2026-01-15T11:00:00Z",
            "2026-01-16T09:00:00Z",
            "2026-01-16T10:00:00Z"
        ]
    );
}

#[test]
fn every_minute() {
    assert_eq!(
        fires("cron(* * * * ? *)", "2026-12-31T23:58:10Z", 3),
        [
            "2026-12-31T23:59:00Z",
            "2027-01-01T00:00:00Z",
            "2027-01-01T00:01:00Z"
        ]
    );
}

#[test]
fn step_from_zero_every_fifteen_minutes() {
    assert_eq!(
        fires("cron(0/15 * * * ? *)", "2026-01-15T10:07:00Z", 4),
        [
            "2026-01-15T10:15:00Z",
            "2026-01-15T10:30:00Z",
            "2026-01-15T10:45:00Z",
            "2026-01-15T11:00:00Z"
        ]
    );
}

#[test]
fn step_with_offset_start() {
    assert_eq!(
        fires("cron(5/20 * * * ? *)", "2026-01-15T10:00:00Z", 4),
        [
            "2026-01-15T10:05:00Z",
            "2026-01-15T10:25:00Z",
            "2026-01-15T10:45:00Z",
            "2026-01-15T11:05:00Z"
        ]
    );
}

#[test]
fn star_step_and_range_step() {
    assert_eq!(
        fires("cron(*/20 * * * ? *)", "2026-01-15T10:00:00Z", 3),
        [
            "2026-01-15T10:20:00Z",
            "2026-01-15T10:40:00Z",
            "2026-01-15T11:00:00Z"
        ]
    );
    assert_eq!(
        fires("cron(10-30/10 * * * ? *)", "2026-01-15T10:00:00Z", 4),
        [
            "2026-01-15T10:10:00Z",
            "2026-01-15T10:20:00Z",
            "2026-01-15T10:30:00Z",
            "2026-01-15T11:10:00Z"
        ]
    );
    // Lists of steps.
    assert_eq!(
        fires("cron(0 1-7/3,20-23/2 * * ? *)", "2026-01-15T00:00:00Z", 6),
        [
            "2026-01-15T01:00:00Z",
            "2026-01-15T04:00:00Z",
            "2026-01-15T07:00:00Z",
            "2026-01-15T20:00:00Z",
            "2026-01-15T22:00:00Z",
            "2026-01-16T01:00:00Z"
        ]
    );
}

#[test]
fn step_larger_than_the_field_keeps_only_the_start() {
    assert_eq!(
        fires("cron(15/65 10 * * ? *)", "2026-01-15T00:00:00Z", 2),
        ["2026-01-15T10:15:00Z", "2026-01-16T10:15:00Z"]
    );
}

#[test]
fn hour_range_wraps_past_midnight() {
    let expected = [
        "2026-01-15T22:00:00Z",
        "2026-01-15T23:00:00Z",
        "2026-01-16T00:00:00Z",
        "2026-01-16T01:00:00Z",
        "2026-01-16T02:00:00Z",
        "2026-01-16T22:00:00Z",
    ];
    assert_eq!(
        fires("cron(0 22-2 * * ? *)", "2026-01-15T12:00:00Z", 6),
        expected
    );
}

#[test]
fn weekday_range() {
    // 2026-01-16 is a Friday.
    assert_eq!(
        fires("cron(0 10 ? * MON-FRI *)", "2026-01-16T12:00:00Z", 2),
        ["2026-01-19T10:00:00Z", "2026-01-20T10:00:00Z"]
    );
}

#[test]
fn weekday_range_wraps_over_the_weekend() {
    // 2026-01-13 is a Tuesday.
    assert_eq!(
        fires("cron(0 10 ? * FRI-MON *)", "2026-01-13T00:00:00Z", 5),
        [
            "2026-01-16T10:00:00Z",
            "2026-01-17T10:00:00Z",
            "2026-01-18T10:00:00Z",
            "2026-01-19T10:00:00Z",
            "2026-01-23T10:00:00Z"
        ]
    );
    assert_eq!(
        fires("cron(0 10 ? * 6-2 *)", "2026-01-13T00:00:00Z", 5),
        fires("cron(0 10 ? * FRI-MON *)", "2026-01-13T00:00:00Z", 5)
    );
}

#[test]
fn sunday_is_one_and_saturday_is_seven() {
    // 2026-01-18 is a Sunday, 2026-01-17 a Saturday.
    assert_eq!(
        next("cron(0 12 ? * 1 *)", "2026-01-15T00:00:00Z").as_deref(),
        Some("2026-01-18T12:00:00Z")
    );
    assert_eq!(
        next("cron(0 12 ? * 7 *)", "2026-01-15T00:00:00Z").as_deref(),
        Some("2026-01-17T12:00:00Z")
    );
}

#[test]
fn names_are_case_insensitive_and_equal_to_numbers() {
    let named = fires("cron(0 10 ? jan,Jul mOn *)", "2026-01-01T00:00:00Z", 12);
    let numbered = fires("cron(0 10 ? 1,7 2 *)", "2026-01-01T00:00:00Z", 12);
    assert_eq!(named, numbered);
    assert_eq!(named[0], "2026-01-05T10:00:00Z");
    assert_eq!(named[4], "2026-07-06T10:00:00Z");
}

#[test]
fn month_step_from_a_name() {
    assert_eq!(
        fires("cron(0 0 1 FEB/3 ? *)", "2026-01-01T00:00:00Z", 5),
        [
            "2026-02-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
            "2026-08-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "2027-02-01T00:00:00Z"
        ]
    );
}

#[test]
fn month_range_wraps_over_new_year() {
    assert_eq!(
        fires("cron(0 0 1 NOV-FEB ? *)", "2026-03-01T00:00:00Z", 5),
        [
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "2027-02-01T00:00:00Z",
            "2027-11-01T00:00:00Z"
        ]
    );
}

#[test]
fn day_of_month_range_wraps_and_skips_missing_days() {
    // 30-2 = 30, 31, 1, 2; February has neither 30 nor 31.
    assert_eq!(
        fires("cron(0 0 30-2 * ? *)", "2026-02-01T00:00:00Z", 6),
        [
            "2026-02-02T00:00:00Z",
            "2026-03-01T00:00:00Z",
            "2026-03-02T00:00:00Z",
            "2026-03-30T00:00:00Z",
            "2026-03-31T00:00:00Z",
            "2026-04-01T00:00:00Z"
        ]
    );
}

#[test]
fn thirty_first_only_in_long_months() {
    assert_eq!(
        fires("cron(0 0 31 * ? *)", "2026-01-31T00:00:00Z", 6),
        [
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
            "2026-08-31T00:00:00Z",
            "2026-10-31T00:00:00Z",
            "2026-12-31T00:00:00Z"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Years

#[test]
fn year_range_ends() {
    let s = schedule("cron(0 0 1 1 ? 2027-2028)", "UTC");
    let all: Vec<String> = s.fires_after(t("2026-06-01T00:00:00Z")).map(fmt).collect();
    assert_eq!(all, ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]);
}

#[test]
fn year_step_and_list() {
    assert_eq!(
        fires("cron(0 0 1 1 ? 2030/10)", "2026-01-01T00:00:00Z", 3),
        [
            "2030-01-01T00:00:00Z",
            "2040-01-01T00:00:00Z",
            "2050-01-01T00:00:00Z"
        ]
    );
    assert_eq!(
        next("cron(0 0 1 1 ? 2030/10)", "2190-01-01T00:00:00Z"),
        None
    );
    assert_eq!(
        fires("cron(0 0 1 1 ? 2031,2029)", "2026-01-01T00:00:00Z", 3),
        ["2029-01-01T00:00:00Z", "2031-01-01T00:00:00Z"]
    );
}

#[test]
fn past_year_never_fires_again() {
    assert_eq!(next("cron(0 0 * * ? 2020)", "2026-01-01T00:00:00Z"), None);
}

#[test]
fn search_starts_at_1970_for_earlier_instants() {
    assert_eq!(
        next("cron(0 0 1 1 ? *)", "1900-06-01T00:00:00Z").as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
}

#[test]
fn last_minute_of_2199_is_the_end() {
    assert_eq!(
        next("cron(59 23 31 12 ? 2199)", "1970-01-01T00:00:00Z").as_deref(),
        Some("2199-12-31T23:59:00Z")
    );
    assert_eq!(next("cron(* * * * ? *)", "2199-12-31T23:59:00Z"), None);
    assert_eq!(next("cron(* * * * ? *)", "2250-01-01T00:00:00Z"), None);
}

// ---------------------------------------------------------------------------------------------
// L, W, # and leap days

#[test]
fn last_day_of_month() {
    assert_eq!(
        fires("cron(0 0 L * ? *)", "2026-01-15T00:00:00Z", 4),
        [
            "2026-01-31T00:00:00Z",
            "2026-02-28T00:00:00Z",
            "2026-03-31T00:00:00Z",
            "2026-04-30T00:00:00Z"
        ]
    );
    assert_eq!(
        next("cron(0 0 L 2 ? *)", "2028-01-01T00:00:00Z").as_deref(),
        Some("2028-02-29T00:00:00Z")
    );
}

#[test]
fn last_weekday_of_month() {
    // Jan 2026 ends on Saturday 31 → Friday 30; Feb ends Saturday 28 → Friday 27;
    // Mar ends Tuesday 31; May ends Sunday 31 → Friday 29.
    assert_eq!(
        fires("cron(0 0 LW * ? *)", "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-30T00:00:00Z",
            "2026-02-27T00:00:00Z",
            "2026-03-31T00:00:00Z"
        ]
    );
    assert_eq!(
        next("cron(0 0 LW * ? *)", "2026-05-01T00:00:00Z").as_deref(),
        Some("2026-05-29T00:00:00Z")
    );
}

#[test]
fn first_weekday_on_a_saturday_moves_forward_not_into_the_previous_month() {
    // 2026-08-01 is a Saturday: the nearest weekday in August is Monday the 3rd.
    assert_eq!(
        next("cron(0 0 1W * ? *)", "2026-07-15T00:00:00Z").as_deref(),
        Some("2026-08-03T00:00:00Z")
    );
    // 2026-02-01 is a Sunday: Monday the 2nd.
    assert_eq!(
        next("cron(0 0 1W * ? *)", "2026-01-15T00:00:00Z").as_deref(),
        Some("2026-02-02T00:00:00Z")
    );
}

#[test]
fn nearest_weekday_mid_month() {
    // 2026-03-15 is a Sunday → Monday 16; 2026-08-15 is a Saturday → Friday 14;
    // 2026-03-10 is a Tuesday → itself.
    assert_eq!(
        next("cron(0 0 15W * ? *)", "2026-03-01T00:00:00Z").as_deref(),
        Some("2026-03-16T00:00:00Z")
    );
    assert_eq!(
        next("cron(0 0 15W * ? *)", "2026-08-01T00:00:00Z").as_deref(),
        Some("2026-08-14T00:00:00Z")
    );
    assert_eq!(
        next("cron(0 0 10W * ? *)", "2026-03-01T00:00:00Z").as_deref(),
        Some("2026-03-10T00:00:00Z")
    );
}

#[test]
fn nearest_weekday_on_a_final_sunday_moves_back() {
    // 2025-11-30 is a Sunday and the month's last day: Friday the 28th.
    assert_eq!(
        next("cron(0 0 30W * ? *)", "2025-11-01T00:00:00Z").as_deref(),
        Some("2025-11-28T00:00:00Z")
    );
}

#[test]
fn thirty_first_weekday_skips_thirty_day_months() {
    // March 31 2026 is a Tuesday; April has no 31st; May 31 is a Sunday → Friday 29.
    assert_eq!(
        fires("cron(0 0 31W * ? *)", "2026-03-01T00:00:00Z", 2),
        ["2026-03-31T00:00:00Z", "2026-05-29T00:00:00Z"]
    );
}

#[test]
fn nth_weekday_of_month() {
    // Third Friday: Jan 2026 → 16th, Feb 2026 → 20th.
    assert_eq!(
        fires("cron(0 0 ? * 6#3 *)", "2026-01-01T00:00:00Z", 2),
        ["2026-01-16T00:00:00Z", "2026-02-20T00:00:00Z"]
    );
    // First Monday by name: Feb 2026 → 2nd.
    assert_eq!(
        next("cron(30 7 ? * MON#1 *)", "2026-01-31T00:00:00Z").as_deref(),
        Some("2026-02-02T07:30:00Z")
    );
}

#[test]
fn fifth_weekday_skips_months_without_one() {
    // Fifth Tuesday: none in Jan or Feb 2026; March 2026 has Tuesdays 3, 10, 17, 24, 31.
    assert_eq!(
        next("cron(0 0 ? * 3#5 *)", "2026-01-01T00:00:00Z").as_deref(),
        Some("2026-03-31T00:00:00Z")
    );
}

#[test]
fn last_given_weekday_of_month() {
    // Last Friday: Jan 2026 → 30th (31st is a Saturday), Feb 2026 → 27th.
    assert_eq!(
        fires("cron(0 0 ? * 6L *)", "2026-01-01T00:00:00Z", 2),
        ["2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z"]
    );
    assert_eq!(
        fires("cron(0 0 ? * FRIL *)", "2026-01-01T00:00:00Z", 2),
        fires("cron(0 0 ? * 6L *)", "2026-01-01T00:00:00Z", 2)
    );
    // Last Monday of May 2026 (31st is a Sunday) → 25th.
    assert_eq!(
        next("cron(15 10 ? * 2L *)", "2026-05-01T00:00:00Z").as_deref(),
        Some("2026-05-25T10:15:00Z")
    );
}

#[test]
fn last_friday_in_a_year_range_as_in_the_aws_example() {
    let all: Vec<String> = schedule("cron(15 10 ? * 6L 2022-2023)", "UTC")
        .fires_after(t("2023-10-01T00:00:00Z"))
        .map(fmt)
        .collect();
    assert_eq!(
        all,
        [
            "2023-10-27T10:15:00Z",
            "2023-11-24T10:15:00Z",
            "2023-12-29T10:15:00Z"
        ]
    );
}

#[test]
fn l_alone_in_day_of_week_is_saturday() {
    // 2026-01-12 is a Monday.
    assert_eq!(
        fires("cron(0 0 ? * L *)", "2026-01-12T00:00:00Z", 2),
        ["2026-01-17T00:00:00Z", "2026-01-24T00:00:00Z"]
    );
}

#[test]
fn february_29_only_in_leap_years() {
    assert_eq!(
        fires("cron(0 0 29 2 ? *)", "2026-01-01T00:00:00Z", 3),
        [
            "2028-02-29T00:00:00Z",
            "2032-02-29T00:00:00Z",
            "2036-02-29T00:00:00Z"
        ]
    );
    // 2100 is not a leap year; 2000 is.
    assert_eq!(
        next("cron(0 0 29 2 ? *)", "2096-03-01T00:00:00Z").as_deref(),
        Some("2104-02-29T00:00:00Z")
    );
    assert_eq!(
        next("cron(0 0 29 2 ? *)", "1999-01-01T00:00:00Z").as_deref(),
        Some("2000-02-29T00:00:00Z")
    );
}

#[test]
fn sparse_expressions_are_found_across_centuries() {
    // Every leap day 1972–2196 except 2100: 57 leap years in steps of four, less one.
    let leap_days = schedule("cron(0 0 29 2 ? *)", "UTC")
        .fires_after(t("1970-01-01T00:00:00Z"))
        .count();
    assert_eq!(leap_days, 56);
    for _ in 0..100 {
        assert!(schedule("cron(0 0 29 2 ? *)", "Europe/Berlin")
            .next_after(t("2026-03-01T00:00:00Z"))
            .is_some());
    }
}

#[test]
fn impossible_dates_return_none() {
    // A minute-by-minute search would run for centuries here; the field-by-field one answers
    // at once (its speed is measured by a benchmark, not asserted in a test).
    for expr in [
        "cron(0 0 30 2 ? *)",
        "cron(0 0 31 2,4,6,9,11 ? *)",
        "cron(0 0 31W 4 ? *)",
        "cron(0 0 ? 2 2#5 2026)",
    ] {
        assert_eq!(next(expr, "1970-01-01T00:00:00Z"), None, "{expr}");
        assert_eq!(
            schedule(expr, "America/New_York").next_after(t("2026-01-01T00:00:00Z")),
            None,
            "{expr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Time zones and daylight-saving time

#[test]
fn cron_is_read_in_the_schedule_time_zone() {
    // 08:30 EST = 13:30 UTC in January; 08:30 EDT = 12:30 UTC in July.
    assert_eq!(
        fires_in(
            "cron(30 8 * * ? *)",
            "America/New_York",
            "2026-01-15T00:00:00Z",
            1
        ),
        ["2026-01-15T13:30:00Z"]
    );
    assert_eq!(
        fires_in(
            "cron(30 8 * * ? *)",
            "America/New_York",
            "2026-07-15T00:00:00Z",
            1
        ),
        ["2026-07-15T12:30:00Z"]
    );
    // Day boundaries are local: 07:00 Monday in Tokyo is 22:00 Sunday UTC.
    assert_eq!(
        fires_in(
            "cron(0 7 ? * MON *)",
            "Asia/Tokyo",
            "2026-01-14T00:00:00Z",
            1
        ),
        ["2026-01-18T22:00:00Z"]
    );
}

#[test]
fn new_york_spring_forward_skips_the_missing_time() {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
    assert_eq!(
        fires_in(
            "cron(30 2 * * ? *)",
            "America/New_York",
            "2026-03-07T00:00:00Z",
            3
        ),
        [
            "2026-03-07T07:30:00Z",
            "2026-03-09T06:30:00Z",
            "2026-03-10T06:30:00Z"
        ]
    );
}

#[test]
fn new_york_spring_forward_keeps_frequent_crons_continuous() {
    // 01:45 EST, then the wall clock reads 03:00 EDT.
    assert_eq!(
        fires_in(
            "cron(0/15 * * * ? *)",
            "America/New_York",
            "2026-03-08T06:40:00Z",
            3
        ),
        [
            "2026-03-08T06:45:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:15:00Z"
        ]
    );
}

#[test]
fn new_york_fall_back_runs_a_repeated_time_once() {
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST, so 01:30 happens at 05:30Z and 06:30Z.
    assert_eq!(
        fires_in(
            "cron(30 1 * * ? *)",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            2
        ),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    // Asked from inside the repeat (01:10 EST), the day's 01:30 has already been due.
    assert_eq!(
        fires_in(
            "cron(30 1 * * ? *)",
            "America/New_York",
            "2026-11-01T06:10:00Z",
            1
        ),
        ["2026-11-02T06:30:00Z"]
    );
    // A time after the repeat is unaffected: 02:30 EST.
    assert_eq!(
        fires_in(
            "cron(30 2 * * ? *)",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            2
        ),
        ["2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"]
    );
}

#[test]
fn new_york_fall_back_pauses_frequent_crons_during_the_repeat() {
    // 01:45 EDT, then the wall clock repeats 01:00–01:59 (not fired again) until 02:00 EST.
    assert_eq!(
        fires_in(
            "cron(0/15 * * * ? *)",
            "America/New_York",
            "2026-11-01T05:40:00Z",
            3
        ),
        [
            "2026-11-01T05:45:00Z",
            "2026-11-01T07:00:00Z",
            "2026-11-01T07:15:00Z"
        ]
    );
}

#[test]
fn berlin_daily_0230_across_both_switches() {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST: no 02:30 that day.
    assert_eq!(
        fires_in(
            "cron(30 2 * * ? *)",
            "Europe/Berlin",
            "2026-03-28T00:00:00Z",
            2
        ),
        ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"]
    );
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET: 02:30 runs once, at the CEST instant.
    assert_eq!(
        fires_in(
            "cron(30 2 * * ? *)",
            "Europe/Berlin",
            "2026-10-24T12:00:00Z",
            2
        ),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
}

#[test]
fn from_parts_matches_new() {
    let anchor = t("2026-01-01T00:00:00Z");
    let parsed = ScheduleExpression::parse("cron(30 2 * * ? *)").expect("valid");
    let zone = parse_timezone("Europe/Berlin").expect("known zone");
    assert_eq!(
        Schedule::from_parts(parsed, zone, anchor),
        Schedule::new("cron(30 2 * * ? *)", Some("Europe/Berlin"), anchor).expect("valid")
    );
}

#[test]
fn utc_is_the_default_time_zone() {
    let s = Schedule::new("cron(30 2 * * ? *)", None, t("2026-01-01T00:00:00Z"))
        .expect("valid schedule");
    assert_eq!(s.timezone(), Tz::UTC);
    assert_eq!(
        s.next_after(t("2026-03-08T00:00:00Z")).map(fmt).as_deref(),
        Some("2026-03-08T02:30:00Z")
    );
}

#[test]
fn unknown_time_zone_is_refused() {
    let e = Schedule::new("rate(1 hour)", Some("Mars/Olympus_Mons"), Utc::now())
        .expect_err("unknown zone");
    assert_eq!(
        e.to_string(),
        "unknown time zone \"Mars/Olympus_Mons\": expected an IANA name such as America/New_York or UTC"
    );
    assert_eq!(
        parse_timezone("Europe/Berlin").expect("known zone"),
        chrono_tz::Europe::Berlin
    );
    assert!(parse_timezone("").is_err());
}

// ---------------------------------------------------------------------------------------------
// rate(...)

#[test]
fn rate_counts_from_the_anchor() {
    let anchor = t("2026-01-01T00:00:42Z");
    let s = Schedule::new("rate(5 minutes)", None, anchor).expect("valid");
    // Before the anchor: the anchor itself is the first fire.
    assert_eq!(s.next_after(t("2025-12-31T00:00:00Z")), Some(anchor));
    assert_eq!(
        s.next_after(anchor).map(fmt).as_deref(),
        Some("2026-01-01T00:05:42Z")
    );
    assert_eq!(
        s.next_after(t("2026-01-01T00:07:30Z")).map(fmt).as_deref(),
        Some("2026-01-01T00:10:42Z")
    );
    assert_eq!(
        s.next_after(t("2026-01-01T00:10:42Z")).map(fmt).as_deref(),
        Some("2026-01-01T00:15:42Z")
    );
    // Far later, still on the anchor's grid.
    assert_eq!(
        s.next_after(t("2026-07-04T13:01:00Z")).map(fmt).as_deref(),
        Some("2026-07-04T13:05:42Z")
    );
}

#[test]
fn rate_units() {
    let anchor = t("2026-01-01T00:00:00Z");
    for (expr, period) in [
        ("rate(1 minute)", 60),
        ("rate(2 minutes)", 120),
        ("rate(1 hour)", 3_600),
        ("rate(12 hours)", 43_200),
        ("rate(1 day)", 86_400),
        ("rate(7 days)", 604_800),
    ] {
        let s = Schedule::new(expr, None, anchor).expect("valid");
        let next = s.next_after(anchor).expect("fires again");
        assert_eq!((next - anchor).num_seconds(), period, "{expr}");
        let ScheduleExpression::Rate(rate) = s.expression() else {
            panic!("{expr} is a rate");
        };
        assert_eq!(rate.period().num_seconds(), period, "{expr}");
    }
}

#[test]
fn rate_day_is_24_hours_across_dst() {
    // EventBridge Scheduler: rate(1 days) stays 24 hours when a day has 23 or 25.
    let anchor = t("2026-03-07T12:00:00Z");
    let s = Schedule::new("rate(1 day)", Some("America/New_York"), anchor).expect("valid");
    assert_eq!(
        s.next_after(anchor).map(fmt).as_deref(),
        Some("2026-03-08T12:00:00Z")
    );
    assert_eq!(
        s.next_after(t("2026-03-08T12:00:00Z")).map(fmt).as_deref(),
        Some("2026-03-09T12:00:00Z")
    );
}

#[test]
fn huge_rates_end_instead_of_overflowing() {
    let anchor = t("2026-01-01T00:00:00Z");
    let s = Schedule::new("rate(4294967295 days)", None, anchor).expect("valid");
    assert_eq!(s.next_after(t("2025-01-01T00:00:00Z")), Some(anchor));
    assert_eq!(s.next_after(anchor), None);
}

#[test]
fn nothing_fires_more_often_than_once_a_minute() {
    let anchor = t("2026-01-01T00:00:00Z");
    for (expr, tz) in [
        ("cron(* * * * ? *)", "UTC"),
        ("cron(* * * * ? *)", "America/New_York"),
        ("cron(0-59 * ? * * *)", "Europe/Berlin"),
        ("rate(1 minute)", "UTC"),
    ] {
        let s = Schedule::new(expr, Some(tz), anchor).expect("valid");
        // Across the 2026 fall-back in New York and Berlin.
        for after in ["2026-11-01T04:30:00Z", "2026-10-25T00:30:00Z"] {
            let times: Vec<_> = s.fires_after(t(after)).take(200).collect();
            assert!(times
                .windows(2)
                .all(|w| w[1] - w[0] >= chrono::TimeDelta::seconds(60)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// at(...)

#[test]
fn at_fires_once() {
    let s = schedule("at(2026-05-01T12:00:00)", "UTC");
    assert_eq!(
        s.next_after(t("2026-01-01T00:00:00Z")).map(fmt).as_deref(),
        Some("2026-05-01T12:00:00Z")
    );
    assert_eq!(s.next_after(t("2026-05-01T12:00:00Z")), None);
    assert_eq!(s.fires_after(t("2026-01-01T00:00:00Z")).count(), 1);
}

#[test]
fn at_is_read_in_the_schedule_time_zone() {
    // The AWS example: 1 p.m. in Los Angeles on 2022-11-20 (PST, UTC-8).
    assert_eq!(
        fires_in(
            "at(2022-11-20T13:00:00)",
            "America/Los_Angeles",
            "2022-01-01T00:00:00Z",
            5
        ),
        ["2022-11-20T21:00:00Z"]
    );
}

#[test]
fn at_in_a_dst_gap_fires_when_the_gap_ends() {
    assert_eq!(
        fires_in(
            "at(2026-03-08T02:30:00)",
            "America/New_York",
            "2026-01-01T00:00:00Z",
            5
        ),
        ["2026-03-08T07:00:00Z"]
    );
}

#[test]
fn at_in_a_repeated_hour_fires_at_the_first_instance() {
    assert_eq!(
        fires_in(
            "at(2026-11-01T01:30:00)",
            "America/New_York",
            "2026-01-01T00:00:00Z",
            5
        ),
        ["2026-11-01T05:30:00Z"]
    );
}

// ---------------------------------------------------------------------------------------------
// first_fire_in

#[test]
fn first_fire_in_window_is_inclusive_of_until() {
    let s = schedule("cron(0 10 * * ? *)", "UTC");
    let after = t("2026-01-01T11:00:00Z");
    assert_eq!(
        s.first_fire_in(after, t("2026-01-03T12:00:00Z"))
            .map(fmt)
            .as_deref(),
        Some("2026-01-02T10:00:00Z")
    );
    assert_eq!(
        s.first_fire_in(after, t("2026-01-02T10:00:00Z"))
            .map(fmt)
            .as_deref(),
        Some("2026-01-02T10:00:00Z")
    );
    assert_eq!(s.first_fire_in(after, t("2026-01-02T09:59:59Z")), None);
    assert_eq!(s.first_fire_in(after, after), None);
}

// ---------------------------------------------------------------------------------------------
// Display and accessors

#[test]
fn expressions_display_as_written() {
    for expr in [
        "rate(1 minute)",
        "rate(5 minutes)",
        "cron(0 10 * * ? *)",
        "cron(15 10 ? * 6L 2022-2023)",
        "at(2026-05-01T12:00:00)",
    ] {
        let parsed: ScheduleExpression = expr.parse().expect("valid");
        assert_eq!(parsed.to_string(), expr);
    }
    let s = Schedule::new(
        "rate(3 hours)",
        Some("Europe/Berlin"),
        t("2026-01-01T00:00:00Z"),
    )
    .expect("valid");
    assert_eq!(s.timezone(), chrono_tz::Europe::Berlin);
    assert_eq!(s.anchor(), t("2026-01-01T00:00:00Z"));
    let ScheduleExpression::Rate(rate) = s.expression() else {
        panic!("a rate");
    };
    assert_eq!((rate.value(), rate.unit()), (3, RateUnit::Hour));
}

#[test]
fn accepted_variants() {
    for expr in [
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 18 L * ? *)",
        "cron(0 18 LW * ? *)",
        "cron(0 18 31W * ? *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 07/12 ? * * *)",
        "cron(10,20,30,40 07/12 ? * * *)",
        "cron(0,5 07/12 ? * 1,5,7 2020-2021,2028-2199)",
        "cron(0 9-5 ? * MON-FRI *)",
        "cron(30 0 1 JAN-APR,JUL-OCT/2,DEC ? *)",
        "cron(0/5 8-17 ? * mon-fri *)",
        "cron(*/10,*/3 * * * ? *)",
        "cron(0 0 ? * SATL *)",
        "cron(0 0 l * ? *)",
        "cron(0 0 15w * ? *)",
        "cron(0 0 ? * sun#2 *)",
        "cron( 0  10 * * ? * )",
    ] {
        assert!(
            ScheduleExpression::parse(expr).is_ok(),
            "{expr}: {:?}",
            ScheduleExpression::parse(expr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections

#[test]
fn day_of_month_and_day_of_week_both_set() {
    assert_eq!(
        err("cron(0 0 1 * MON *)"),
        "invalid cron expression: day-of-month and day-of-week cannot both be specified; use ? in one of them"
    );
    assert_eq!(err("cron(0 18 * * * *)"), err("cron(0 0 1 * MON *)"));
}

#[test]
fn day_of_month_and_day_of_week_both_question_marks() {
    assert_eq!(
        err("cron(0 9 ? * ? *)"),
        "invalid cron expression: day-of-month and day-of-week cannot both be ?; exactly one of them must be ?"
    );
}

#[test]
fn question_mark_outside_the_day_fields() {
    assert_eq!(
        err("cron(? 0 * * ? *)"),
        "invalid cron expression: minutes field \"?\": ? is only allowed in day-of-month and day-of-week"
    );
    assert_eq!(
        err("cron(0 0 * ? ? *)"),
        "invalid cron expression: month field \"?\": ? is only allowed in day-of-month and day-of-week"
    );
    assert_eq!(
        err("cron(0 0 1,? * ? *)"),
        "invalid cron expression: day-of-month field \"?\": ? must be the whole field"
    );
}

#[test]
fn hash_in_day_of_month() {
    assert_eq!(
        err("cron(0 0 3#2 * ? *)"),
        "invalid cron expression: day-of-month field \"3#2\": # is only allowed in day-of-week"
    );
}

#[test]
fn w_in_day_of_week() {
    assert_eq!(
        err("cron(0 0 ? * 2W *)"),
        "invalid cron expression: day-of-week field \"2W\": W is only allowed in day-of-month"
    );
    assert_eq!(
        err("cron(0 0 ? * LW *)"),
        "invalid cron expression: day-of-week field \"LW\": W is only allowed in day-of-month"
    );
}

#[test]
fn l_outside_the_day_fields() {
    assert_eq!(
        err("cron(L 0 * * ? *)"),
        "invalid cron expression: minutes field \"L\": L is only allowed in day-of-month and day-of-week"
    );
    assert_eq!(
        err("cron(0 5L * * ? *)"),
        "invalid cron expression: hours field \"5L\": L is only allowed in day-of-month and day-of-week"
    );
}

#[test]
fn slash_in_day_of_week() {
    assert_eq!(
        err("cron(0 0 ? * 1/2 *)"),
        "invalid cron expression: day-of-week field \"1/2\": / is not allowed in day-of-week (it takes , - * ? L #)"
    );
}

#[test]
fn occurrence_out_of_range() {
    assert_eq!(
        err("cron(0 0 ? * MON#6 *)"),
        "invalid cron expression: day-of-week field \"MON#6\": occurrence must be 1-5"
    );
    assert_eq!(
        err("cron(0 0 ? * 3#0 *)"),
        "invalid cron expression: day-of-week field \"3#0\": occurrence must be 1-5"
    );
    assert_eq!(
        err("cron(0 0 ? * 8#2 *)"),
        "invalid cron expression: day-of-week field \"8#2\": value 8 is out of range 1-7 or SUN-SAT"
    );
}

#[test]
fn only_one_hash_expression() {
    assert_eq!(
        err("cron(0 0 ? * 3#1,6#3 *)"),
        "invalid cron expression: day-of-week field \"3#1,6#3\": only one # expression is allowed in day-of-week"
    );
    assert_eq!(
        err("cron(0 0 ? * 2,3#1 *)"),
        "invalid cron expression: day-of-week field \"2,3#1\": only one # expression is allowed in day-of-week"
    );
}

#[test]
fn out_of_range_values() {
    for (expr, message) in [
        (
            "cron(60 0 * * ? *)",
            "minutes field \"60\": value 60 is out of range 0-59",
        ),
        (
            "cron(0 24 * * ? *)",
            "hours field \"24\": value 24 is out of range 0-23",
        ),
        (
            "cron(0 0 0 * ? *)",
            "day-of-month field \"0\": value 0 is out of range 1-31",
        ),
        (
            "cron(0 0 32 * ? *)",
            "day-of-month field \"32\": value 32 is out of range 1-31",
        ),
        (
            "cron(0 0 32W * ? *)",
            "day-of-month field \"32W\": value 32 is out of range 1-31",
        ),
        (
            "cron(0 0 1 13 ? *)",
            "month field \"13\": value 13 is out of range 1-12 or JAN-DEC",
        ),
        (
            "cron(0 0 ? * 0 *)",
            "day-of-week field \"0\": value 0 is out of range 1-7 or SUN-SAT",
        ),
        (
            "cron(0 0 ? * 1-8 *)",
            "day-of-week field \"1-8\": value 8 is out of range 1-7 or SUN-SAT",
        ),
        (
            "cron(0 0 ? * 9L *)",
            "day-of-week field \"9L\": value 9 is out of range 1-7 or SUN-SAT",
        ),
        (
            "cron(0 0 * * ? 1969)",
            "year field \"1969\": value 1969 is out of range 1970-2199",
        ),
        (
            "cron(0 0 * * ? 2000-2200)",
            "year field \"2000-2200\": value 2200 is out of range 1970-2199",
        ),
        (
            "cron(0 0 * * ? 99999999999)",
            "year field \"99999999999\": value 99999999999 is out of range 1970-2199",
        ),
        (
            "cron(70/5 * * * ? *)",
            "minutes field \"70/5\": value 70 is out of range 0-59",
        ),
    ] {
        assert_eq!(
            err(expr),
            format!("invalid cron expression: {message}"),
            "{expr}"
        );
    }
}

#[test]
fn zero_and_malformed_steps() {
    assert_eq!(
        err("cron(0/0 * * * ? *)"),
        "invalid cron expression: minutes field \"0/0\": step must be at least 1"
    );
    assert_eq!(
        err("cron(0 */0 * * ? *)"),
        "invalid cron expression: hours field \"*/0\": step must be at least 1"
    );
    assert_eq!(
        err("cron(5/ * * * ? *)"),
        "invalid cron expression: minutes field \"5/\": step \"\" must be a positive integer"
    );
    assert_eq!(
        err("cron(5/x * * * ? *)"),
        "invalid cron expression: minutes field \"5/x\": step \"x\" must be a positive integer"
    );
}

#[test]
fn wrong_field_counts() {
    assert_eq!(
        err("cron(0 10 * * ?)"),
        "invalid cron expression: expected 6 fields (minutes hours day-of-month month day-of-week year), found 5"
    );
    assert_eq!(
        err("cron(0 0 10 * * ? *)"),
        "invalid cron expression: expected 6 fields (minutes hours day-of-month month day-of-week year), found 7"
    );
    assert_eq!(
        err("cron()"),
        "invalid cron expression: expected 6 fields (minutes hours day-of-month month day-of-week year), found 0"
    );
}

#[test]
fn l_and_w_misuse_in_day_of_month() {
    for (expr, message) in [
        ("cron(0 0 L-3 * ? *)", "day-of-month field \"L-3\": offsets from the last day (L-n) are not supported; use L or LW"),
        ("cron(0 0 1,L * ? *)", "day-of-month field \"1,L\": L, LW and nW must be the only value in the field"),
        ("cron(0 0 W * ? *)", "day-of-month field \"W\": W needs a day before it (for example 15W, or LW)"),
        ("cron(0 0 1-5W * ? *)", "day-of-month field \"1-5W\": W takes a single day number (for example 15W); ranges, lists and steps are not allowed"),
        ("cron(0 0 8L * ? *)", "day-of-month field \"8L\": L in day-of-month must stand alone (L) or be LW"),
    ] {
        assert_eq!(err(expr), format!("invalid cron expression: {message}"), "{expr}");
    }
}

#[test]
fn l_misuse_in_day_of_week() {
    assert_eq!(
        err("cron(0 0 ? * MON,L *)"),
        "invalid cron expression: day-of-week field \"L\": L and nL must be the only value in the field"
    );
    assert_eq!(
        err("cron(0 0 ? * L-2 *)"),
        "invalid cron expression: day-of-week field \"L-2\": offsets from the last day (L-n) are not supported in day-of-week; use nL"
    );
}

#[test]
fn unrecognised_values_and_malformed_lists() {
    for (expr, message) in [
        (
            "cron(0 0 1 FOO ? *)",
            "month field \"FOO\": unrecognised value \"FOO\" (expected 1-12 or JAN-DEC)",
        ),
        (
            "cron(0 0 1 MON ? *)",
            "month field \"MON\": unrecognised value \"MON\" (expected 1-12 or JAN-DEC)",
        ),
        (
            "cron(0 0 ? * JUL *)",
            "day-of-week field \"JUL\": unrecognised value \"JUL\" (expected 1-7 or SUN-SAT)",
        ),
        (
            "cron(0 0 ? * MONDAY *)",
            "day-of-week field \"MONDAY\": unrecognised value \"MONDAY\" (expected 1-7 or SUN-SAT)",
        ),
        (
            "cron(1,,2 0 * * ? *)",
            "minutes field \"1,,2\": empty value in list",
        ),
        (
            "cron(5, 0 * * ? *)",
            "minutes field \"5,\": empty value in list",
        ),
        (
            "cron(*,5 0 * * ? *)",
            "minutes field \"*,5\": * cannot be combined with other values",
        ),
        ("cron(-1 0 * * ? *)", "minutes field \"-1\": missing value"),
        (
            "cron(0 0 * * ? 2030-2020)",
            "year field \"2030-2020\": range start 2030 is after range end 2020",
        ),
    ] {
        assert_eq!(
            err(expr),
            format!("invalid cron expression: {message}"),
            "{expr}"
        );
    }
}

#[test]
fn messages_quote_tokens_as_written() {
    assert_eq!(
        err("cron(0 0 1 foo ? *)"),
        "invalid cron expression: month field \"foo\": unrecognised value \"foo\" (expected 1-12 or JAN-DEC)"
    );
    assert_eq!(
        err("cron(0 0 ? * mon#6 *)"),
        "invalid cron expression: day-of-week field \"mon#6\": occurrence must be 1-5"
    );
    assert_eq!(
        err("cron(0 0 ? * jan-fri *)"),
        "invalid cron expression: day-of-week field \"jan-fri\": unrecognised value \"jan\" (expected 1-7 or SUN-SAT)"
    );
}

#[test]
fn rate_rejections() {
    for (expr, message) in [
        ("rate(0 minutes)", "value \"0\" must be a positive integer"),
        (
            "rate(-5 minutes)",
            "value \"-5\" must be a positive integer",
        ),
        (
            "rate(1.5 hours)",
            "value \"1.5\" must be a positive integer",
        ),
        (
            "rate(99999999999 minutes)",
            "value \"99999999999\" is too large",
        ),
        (
            "rate(1 minutes)",
            "unit \"minutes\": a value of 1 takes the singular unit \"minute\"",
        ),
        (
            "rate(1 days)",
            "unit \"days\": a value of 1 takes the singular unit \"day\"",
        ),
        (
            "rate(5 minute)",
            "unit \"minute\": a value of 5 takes the plural unit \"minutes\"",
        ),
        (
            "rate(5 weeks)",
            "unit \"weeks\" must be minute(s), hour(s) or day(s)",
        ),
        (
            "rate(30 seconds)",
            "unit \"seconds\" must be minute(s), hour(s) or day(s)",
        ),
        (
            "rate(5 Minutes)",
            "unit \"Minutes\" must be minute(s), hour(s) or day(s)",
        ),
        (
            "rate(5)",
            "expected rate(value unit), found 1 part(s) in \"5\"",
        ),
        (
            "rate(5 minutes",
            "\"rate(5 minutes\" is missing its closing parenthesis",
        ),
    ] {
        assert_eq!(
            err(expr),
            format!("invalid rate expression: {message}"),
            "{expr}"
        );
    }
}

#[test]
fn at_rejections() {
    for (expr, message) in [
        (
            "at(2026-02-30T00:00:00)",
            "\"2026-02-30T00:00:00\" is not a valid date and time",
        ),
        (
            "at(2026-05-01T24:00:00)",
            "\"2026-05-01T24:00:00\" is not a valid date and time",
        ),
        (
            "at(2026-5-1T12:00:00)",
            "\"2026-5-1T12:00:00\" is not of the form yyyy-mm-ddThh:mm:ss",
        ),
        (
            "at(2026-05-01 12:00:00)",
            "\"2026-05-01 12:00:00\" is not of the form yyyy-mm-ddThh:mm:ss",
        ),
        (
            "at(2026-05-01T12:00:00Z)",
            "\"2026-05-01T12:00:00Z\" is not of the form yyyy-mm-ddThh:mm:ss",
        ),
        (
            "at(2026-05-01T12:00)",
            "\"2026-05-01T12:00\" is not of the form yyyy-mm-ddThh:mm:ss",
        ),
    ] {
        assert_eq!(
            err(expr),
            format!("invalid at expression: {message}"),
            "{expr}"
        );
    }
}

#[test]
fn unknown_forms() {
    for expr in [
        "every(5 minutes)",
        "CRON(0 10 * * ? *)",
        "0 10 * * ? *",
        "",
        " rate(5 minutes)",
    ] {
        assert_eq!(
            err(expr),
            format!(
                "invalid schedule expression \"{expr}\": expected rate(value unit), \
                 cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)"
            )
        );
    }
    assert_eq!(
        err("cron(0 10 * * ? *"),
        "invalid cron expression: \"cron(0 10 * * ? *\" is missing its closing parenthesis"
    );
}

// ---------------------------------------------------------------------------------------------
// The event

#[test]
fn scheduled_event_payload() {
    let id = Uuid::parse_str("53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa").expect("uuid");
    let event = scheduled_event(
        id,
        "123456789012",
        "us-east-2",
        "arn:aws:events:us-east-2:123456789012:rule/r",
        t("2019-03-01T01:23:45.678Z"),
    );
    assert_eq!(
        event,
        json!({
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2019-03-01T01:23:45Z",
            "region": "us-east-2",
            "resources": ["arn:aws:events:us-east-2:123456789012:rule/r"],
            "detail": {}
        })
    );
}
