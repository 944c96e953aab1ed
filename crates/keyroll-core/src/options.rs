//! The one table of refresher and policy options: [`OPTIONS`].
//!
//! Every front door reads it: the [`RefresherBuilder`] through
//! [`Options::apply`], the `keyroll` command's flags, `keyroll.open`'s
//! keyword arguments, Django's `KEYROLL` setting and the Flask extension,
//! and the tables in the docs (a test renders them from here and fails when
//! they drift). An option is one entry: its name, unit, scope, default, doc
//! line and the builder call it makes. Values are checked here, once, for
//! every door: a negative, absurd or too small value is an
//! [`OptionError`] naming the option.

use std::fmt;
use std::time::Duration;

use crate::RefresherBuilder;

/// The longest duration any option accepts: a century, far beyond any
/// sensible window, and safe to add to the system clock.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The shortest time between two reads of a store any door accepts (the
/// `interval` option, `keyroll agent --interval`).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What an option's value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    /// A span of time: `30d`, `12h`, `90s`, `500ms` as text; seconds (int
    /// or float) in Python.
    Duration,
    /// A whole number, 0 or more.
    Count,
}

/// Where an option acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// The [`Policy`](crate::Policy): it decides roles, so it matters to every reader of
    /// the keys, even one that evaluates them once (`keyroll check`,
    /// `keyroll sign`).
    Policy,
    /// The refresher that keeps reading the store (`keyroll.open`, `keyroll
    /// watch`).
    Refresher,
}

/// A value of an option, in its [`Unit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A [`Unit::Duration`].
    Duration(Duration),
    /// A [`Unit::Count`].
    Count(usize),
}

/// One refresher or policy option: an entry of [`OPTIONS`].
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RefreshOption {
    /// Its name, in snake case: the [`RefresherBuilder`] method it calls,
    /// `keyroll.open`'s keyword; `--kebab-case` on the command line, `UPPER_CASE` in
    /// Django's `KEYROLL`.
    pub name: &'static str,
    /// What its value measures.
    pub unit: Unit,
    /// Where it acts.
    pub scope: Scope,
    /// Its default, in words.
    pub default: &'static str,
    /// What it does, in one line.
    pub doc: &'static str,
    /// The smallest value it accepts.
    minimum: Value,
    /// Makes the builder call it stands for, with a value that passed
    /// [`check`](Self::check) (so of its unit).
    apply: fn(RefresherBuilder, Value) -> RefresherBuilder,
}

impl fmt::Debug for RefreshOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshOption")
            .field("name", &self.name)
            .field("unit", &self.unit)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

const NO_TIME: Value = Value::Duration(Duration::ZERO);

/// Every refresher and policy option. Adding one is adding an entry here
/// (and its builder method); every door and doc table follows.
pub static OPTIONS: &[RefreshOption] = &[
    RefreshOption {
        name: "interval",
        unit: Unit::Duration,
        scope: Scope::Refresher,
        default: "30 s",
        doc: "time between two reads of the store (push-capable sources apply changes at once)",
        minimum: Value::Duration(MIN_INTERVAL),
        apply: |builder, value| builder.interval(value.duration().unwrap_or_default()),
    },
    RefreshOption {
        name: "jitter",
        unit: Unit::Duration,
        scope: Scope::Refresher,
        default: "a tenth of the interval",
        doc: "random spread of each interval, so replicas do not read the store in step",
        minimum: NO_TIME,
        apply: |builder, value| builder.jitter(value.duration().unwrap_or_default()),
    },
    RefreshOption {
        name: "clock_skew_margin",
        unit: Unit::Duration,
        scope: Scope::Refresher,
        default: "30 s",
        doc: "margin for clock skew between replicas and the store, in the activation delay of shared stores",
        minimum: NO_TIME,
        apply: |builder, value| builder.clock_skew_margin(value.duration().unwrap_or_default()),
    },
    RefreshOption {
        name: "activation_delay",
        unit: Unit::Duration,
        scope: Scope::Policy,
        default: "0 for local sources; interval + jitter + clock skew margin for shared stores",
        doc: "how long a new key only verifies before it signs",
        minimum: NO_TIME,
        apply: |builder, value| builder.activation_delay(value.duration().unwrap_or_default()),
    },
    RefreshOption {
        name: "fallback_window",
        unit: Unit::Duration,
        scope: Scope::Policy,
        default: "30 days",
        doc: "how long a superseded key keeps verifying",
        minimum: NO_TIME,
        apply: |builder, value| builder.fallback_window(value.duration().unwrap_or_default()),
    },
    RefreshOption {
        name: "max_fallbacks",
        unit: Unit::Count,
        scope: Scope::Policy,
        default: "4",
        doc: "how many superseded keys keep verifying at most",
        minimum: Value::Count(0),
        apply: |builder, value| builder.max_fallbacks(value.count().unwrap_or_default()),
    },
    RefreshOption {
        name: "fail_closed_after",
        unit: Unit::Duration,
        scope: Scope::Refresher,
        default: "none: the last good keys keep serving",
        doc: "fail closed (nothing signs or verifies) once the store has not confirmed the keys for this long",
        minimum: NO_TIME,
        apply: |builder, value| builder.fail_closed_after(value.duration().unwrap_or_default()),
    },
    RefreshOption {
        name: "rotate_every",
        unit: Unit::Duration,
        scope: Scope::Refresher,
        default: "off",
        doc: "publish a new key once the newest is this old (one replica of the fleet does, by the store's compare-and-set; needs write access)",
        minimum: NO_TIME,
        apply: |builder, value| builder.rotate_every(value.duration().unwrap_or_default()),
    },
];

impl RefreshOption {
    /// The option called `name` (snake case), if there is one.
    pub fn named(name: &str) -> Option<&'static RefreshOption> {
        OPTIONS.iter().find(|option| option.name == name)
    }

    /// `value` checked against this option's unit and bounds.
    pub fn check(&self, value: Value) -> Result<Value, OptionError> {
        let invalid = |problem: String| OptionError::Invalid {
            name: self.name,
            problem,
        };
        match (self.unit, value, self.minimum) {
            (Unit::Duration, Value::Duration(duration), Value::Duration(minimum)) => {
                if duration > MAX_DURATION {
                    Err(invalid(format!(
                        "must be at most {} seconds",
                        MAX_DURATION.as_secs()
                    )))
                } else if duration < minimum {
                    Err(invalid(format!("must be at least {minimum:?}")))
                } else {
                    Ok(value)
                }
            }
            (Unit::Count, Value::Count(count), Value::Count(minimum)) => {
                if count < minimum {
                    Err(invalid(format!("must be at least {minimum}")))
                } else {
                    Ok(value)
                }
            }
            (Unit::Duration, _, _) => Err(invalid("must be a duration".into())),
            (Unit::Count, _, _) => Err(invalid("must be a whole number".into())),
        }
    }

    /// `text` as a value of this option: a duration such as `500ms`, `90s`,
    /// `15m`, `12h` or `30d` ([`parse_duration`]), or a whole number.
    pub fn parse(&self, text: &str) -> Result<Value, OptionError> {
        let value = match self.unit {
            Unit::Duration => {
                Value::Duration(parse_duration(text).map_err(|problem| OptionError::Invalid {
                    name: self.name,
                    problem,
                })?)
            }
            Unit::Count => Value::Count(text.trim().parse().map_err(|_| OptionError::Invalid {
                name: self.name,
                problem: format!("must be a whole number, not `{text}`"),
            })?),
        };
        self.check(value)
    }

    /// `seconds` as a value of this duration option: negative, NaN,
    /// infinite or absurdly large numbers are refused.
    pub fn seconds(&self, seconds: f64) -> Result<Value, OptionError> {
        if self.unit != Unit::Duration {
            return Err(OptionError::Invalid {
                name: self.name,
                problem: "must be a whole number, not a duration".into(),
            });
        }
        if seconds < 0.0 {
            return Err(OptionError::Invalid {
                name: self.name,
                problem: "must not be negative".into(),
            });
        }
        let duration = duration_of_seconds(seconds).map_err(|problem| OptionError::Invalid {
            name: self.name,
            problem,
        })?;
        self.check(Value::Duration(duration))
    }

    /// `count` as a value of this count option: negative numbers are refused.
    pub fn count(&self, count: i64) -> Result<Value, OptionError> {
        let count = usize::try_from(count).map_err(|_| OptionError::Invalid {
            name: self.name,
            problem: "must not be negative".into(),
        })?;
        self.check(Value::Count(count))
    }
}

impl Value {
    /// The duration, if this is one.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Value::Duration(duration) => Some(duration),
            Value::Count(_) => None,
        }
    }

    /// The count, if this is one.
    pub fn count(self) -> Option<usize> {
        match self {
            Value::Count(count) => Some(count),
            Value::Duration(_) => None,
        }
    }
}

/// `seconds` (an option's value, or any duration a binding takes in
/// seconds: a `max_age`, a `ttl`) as a [`Duration`], or what is wrong with
/// it, without its name: negative, NaN, infinite or beyond [`MAX_DURATION`].
pub fn duration_of_seconds(seconds: f64) -> Result<Duration, String> {
    if (0.0..=MAX_DURATION.as_secs_f64()).contains(&seconds) {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(format!(
            "must be a number of seconds between 0 and {}, not {seconds}",
            MAX_DURATION.as_secs()
        ))
    }
}

/// Why an option was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    /// No option has this name.
    #[error("unknown option `{name}`; the options are {}", names())]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The value is of the wrong unit or out of bounds.
    #[error("{name} {problem}")]
    Invalid {
        /// The option's name.
        name: &'static str,
        /// What is wrong with the value ("must not be negative").
        problem: String,
    },
}

fn names() -> String {
    OPTIONS
        .iter()
        .map(|option| option.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A set of options, each checked when set; applied to a builder by
/// [`Options::apply`]. Unset options keep the builder's defaults.
///
/// ```
/// use keyroll_core::options::Options;
///
/// let mut options = Options::new();
/// options.set_text("fallback_window", "7d")?;
/// options.set_seconds("interval", 5.0)?;
/// assert!(options.set_seconds("jitter", -1.0).is_err());
/// assert!(options.set_text("intervall", "5s").is_err());
/// # Ok::<(), keyroll_core::options::OptionError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: Vec<(&'static RefreshOption, Value)>,
}

impl Options {
    /// No option set.
    pub fn new() -> Self {
        Self::default()
    }

    fn option(name: &str) -> Result<&'static RefreshOption, OptionError> {
        RefreshOption::named(name).ok_or_else(|| OptionError::Unknown {
            name: name.to_owned(),
        })
    }

    fn put(&mut self, option: &'static RefreshOption, value: Value) -> &mut Self {
        self.values.retain(|(set, _)| set.name != option.name);
        self.values.push((option, value));
        self
    }

    /// Sets `name` to `value`, checked.
    pub fn set(&mut self, name: &str, value: Value) -> Result<&mut Self, OptionError> {
        let option = Self::option(name)?;
        let value = option.check(value)?;
        Ok(self.put(option, value))
    }

    /// Sets `name` from text ([`RefreshOption::parse`]).
    pub fn set_text(&mut self, name: &str, text: &str) -> Result<&mut Self, OptionError> {
        let option = Self::option(name)?;
        let value = option.parse(text)?;
        Ok(self.put(option, value))
    }

    /// Sets the duration option `name` from seconds ([`RefreshOption::seconds`]).
    pub fn set_seconds(&mut self, name: &str, seconds: f64) -> Result<&mut Self, OptionError> {
        let option = Self::option(name)?;
        let value = option.seconds(seconds)?;
        Ok(self.put(option, value))
    }

    /// Sets the count option `name` ([`RefreshOption::count`]).
    pub fn set_count(&mut self, name: &str, count: i64) -> Result<&mut Self, OptionError> {
        let option = Self::option(name)?;
        let value = option.count(count)?;
        Ok(self.put(option, value))
    }

    /// The value set for `name`, if any.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.values
            .iter()
            .find(|(option, _)| option.name == name)
            .map(|&(_, value)| value)
    }

    /// The `interval` set here, else the refresher's default
    /// ([`DEFAULT_INTERVAL`](crate::DEFAULT_INTERVAL)).
    pub fn interval(&self) -> Duration {
        self.get("interval")
            .and_then(Value::duration)
            .unwrap_or(crate::DEFAULT_INTERVAL)
    }

    /// `builder` with every option set here applied (in [`OPTIONS`]' order).
    pub fn apply(&self, mut builder: RefresherBuilder) -> RefresherBuilder {
        for option in OPTIONS {
            if let Some(value) = self.get(option.name) {
                builder = (option.apply)(builder, value);
            }
        }
        builder
    }
}

/// `text` as a duration: a whole number and a unit, `ms`, `s` (or none), `m`,
/// `h` or `d` (`500ms`, `90s`, `15m`, `12h`, `30d`); the message says what
/// was wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 90s, 15m, 12h or 30d"))?;
    let unit_millis = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown unit `{unit}` in `{text}`; use ms, s, m, h or d")),
    };
    Ok(Duration::from_millis(number.saturating_mul(unit_millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_documented() {
        for (i, option) in OPTIONS.iter().enumerate() {
            assert!(
                option.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                option.name
            );
            assert!(
                !option.doc.is_empty() && !option.default.is_empty(),
                "{}",
                option.name
            );
            assert!(
                OPTIONS[..i].iter().all(|other| other.name != option.name),
                "{}",
                option.name
            );
            let minimum_fits = matches!(
                (option.unit, option.minimum),
                (Unit::Duration, Value::Duration(_)) | (Unit::Count, Value::Count(_))
            );
            assert!(minimum_fits, "{}", option.name);
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_options_name() {
        let mut options = Options::new();
        let refused = |result: Result<&mut Options, OptionError>| result.unwrap_err().to_string();
        assert_eq!(
            refused(options.set_seconds("jitter", -1.0)),
            "jitter must not be negative"
        );
        assert_eq!(
            refused(options.set_seconds("jitter", 1e12)),
            "jitter must be a number of seconds between 0 and 3153600000, not 1000000000000"
        );
        assert!(
            refused(options.set_seconds("jitter", f64::NAN))
                .starts_with("jitter must be a number of seconds")
        );
        assert_eq!(
            refused(options.set_seconds("interval", 0.0)),
            "interval must be at least 10ms"
        );
        assert_eq!(
            refused(options.set_text("interval", "0s")),
            "interval must be at least 10ms"
        );
        assert_eq!(
            refused(options.set_count("max_fallbacks", -2)),
            "max_fallbacks must not be negative"
        );
        assert_eq!(
            refused(options.set_seconds("max_fallbacks", 2.0)),
            "max_fallbacks must be a whole number, not a duration"
        );
        assert_eq!(
            refused(options.set_text("max_fallbacks", "2.5")),
            "max_fallbacks must be a whole number, not `2.5`"
        );
        assert!(refused(options.set_text("fallback_window", "7w")).contains("unknown unit `w`"));
        assert_eq!(
            refused(options.set(
                "fallback_window",
                Value::Duration(MAX_DURATION + Duration::from_secs(1))
            )),
            "fallback_window must be at most 3153600000 seconds"
        );
        assert!(
            refused(options.set_text("intervall", "5s"))
                .starts_with("unknown option `intervall`; the options are interval, jitter")
        );
        assert!(options.values.is_empty(), "a refused value sets nothing");
    }

    #[test]
    fn the_last_value_set_wins_and_text_and_seconds_agree() {
        let mut options = Options::new();
        options.set_text("fallback_window", "7d").unwrap();
        options.set_seconds("fallback_window", 3600.0).unwrap();
        assert_eq!(
            options.get("fallback_window"),
            Some(Value::Duration(Duration::from_secs(3600)))
        );
        options.set_text("max_fallbacks", " 2 ").unwrap();
        assert_eq!(options.get("max_fallbacks"), Some(Value::Count(2)));
        assert_eq!(options.get("jitter"), None);
    }
}
