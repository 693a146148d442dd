//! HTTP API routes: route keys such as `GET /users/{id}`, `ANY /items/{proxy+}` or `$default`,
//! and choosing the route a request belongs to.
//!
//! API Gateway's documented order ("Routing API requests"): a full match of path and method
//! first, then a route with a greedy variable (`{proxy+}`), then `$default`; `ANY` "matches all
//! methods that you haven't defined for a resource". AWS's table does not say how two full
//! matches rank, so Nimbus ranks candidates by, in order:
//! 1. no greedy variable before greedy;
//! 2. segment by segment from the left: a literal before `{param}` before `{greedy+}` (so
//!    `/pets/dog/1` beats `/pets/dog/{id}` beats `/pets/{kind}/1`, and `/pets/{proxy+}` beats
//!    `/{proxy+}`);
//! 3. a route naming the method before `ANY`;
//! 4. `$default` last.
//!
//! Matching works on the raw path split at `/`, so an encoded `%2F` stays inside its segment; a
//! literal segment matches its percent-decoded request segment, and variable values are
//! percent-decoded (`+` is kept: it is not a space in paths). A `{param}` needs a non-empty
//! segment and a greedy variable at least one non-empty rest, so `/{proxy+}` does not match `/`
//! (add `ANY /` for that, as on AWS).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use http::Method;

use super::percent_decode;

/// Why a route key is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Neither `$default` nor `METHOD /path`.
    #[error("route key {0:?} must be \"$default\" or \"METHOD /path\"")]
    Malformed(String),
    /// The method is not one HTTP APIs route on.
    #[error(
        "route method {0:?} is not supported: use ANY, GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"
    )]
    BadMethod(String),
    /// The path does not start with `/`.
    #[error("route path {0:?} must start with '/'")]
    PathNotAbsolute(String),
    /// The path has `//` or ends in `/` (other than the root path).
    #[error("route path {0:?} has an empty segment")]
    EmptySegment(String),
    /// `{}` or `{+}`.
    #[error("route path {0:?} has a path variable without a name")]
    EmptyParamName(String),
    /// A variable name with characters other than letters, digits, `_`, `-` and `.`.
    #[error("route path {path:?}: {name:?} is not a valid path variable name")]
    InvalidParamName {
        /// The route path.
        path: String,
        /// The offending name.
        name: String,
    },
    /// Braces that do not enclose a whole segment, e.g. `/file-{id}.txt`.
    #[error("route path {path:?}: segment {segment:?} must be a literal or a whole {{variable}}")]
    PartialSegmentVariable {
        /// The route path.
        path: String,
        /// The offending segment.
        segment: String,
    },
    /// A greedy variable before the last segment.
    #[error("route path {path:?}: greedy variable {{{name}+}} must be the last segment")]
    GreedyNotLast {
        /// The route path.
        path: String,
        /// The greedy variable's name.
        name: String,
    },
    /// The same variable name twice in one path.
    #[error("route path {path:?} uses the path variable {name:?} more than once")]
    DuplicateParam {
        /// The route path.
        path: String,
        /// The repeated name.
        name: String,
    },
    /// Another route already covers the same method and path shape.
    #[error("route {new} conflicts with existing route {existing}")]
    Conflict {
        /// The route being added.
        new: String,
        /// The route already in the table.
        existing: String,
    },
}

/// Methods a route can name; `Any` matches every request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteMethod {
    /// Every method not routed more specifically.
    Any,
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `HEAD`.
    Head,
    /// `OPTIONS`.
    Options,
}

impl RouteMethod {
    /// The method as written in a route key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "ANY",
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
        }
    }

    /// Whether a request with `method` may take this route.
    pub fn matches(self, method: &Method) -> bool {
        self == Self::Any || self.as_str() == method.as_str()
    }
}

impl FromStr for RouteMethod {
    type Err = RouteError;

    /// Upper-case only, as API Gateway writes route keys.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ANY" => Self::Any,
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            _ => return Err(RouteError::BadMethod(s.to_owned())),
        })
    }
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    /// Specificity of the segment kind: lower is more specific.
    fn rank(&self) -> u8 {
        match self {
            Self::Literal(_) => 0,
            Self::Param(_) => 1,
            Self::Greedy(_) => 2,
        }
    }
}

/// A validated route path such as `/users/{id}` or `/files/{proxy+}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePath {
    raw: String,
    segments: Vec<Segment>,
}

impl RoutePath {
    /// Validate a route path.
    pub fn parse(path: &str) -> Result<Self, RouteError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(RouteError::PathNotAbsolute(path.to_owned()));
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (index, part) in parts.iter().enumerate() {
                let segment = parse_segment(path, part)?;
                if let Segment::Greedy(name) = &segment {
                    if index + 1 != parts.len() {
                        return Err(RouteError::GreedyNotLast {
                            path: path.to_owned(),
                            name: name.clone(),
                        });
                    }
                }
                if let Segment::Param(name) | Segment::Greedy(name) = &segment {
                    let seen = segments
                        .iter()
                        .any(|s| matches!(s, Segment::Param(n) | Segment::Greedy(n) if n == name));
                    if seen {
                        return Err(RouteError::DuplicateParam {
                            path: path.to_owned(),
                            name: name.clone(),
                        });
                    }
                }
                segments.push(segment);
            }
        }
        Ok(Self {
            raw: path.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the path ends in a greedy variable.
    pub fn is_greedy(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Greedy(_)))
    }

    /// The path with variable names erased: two routes with one shape match the same requests.
    fn shape(&self) -> Vec<Option<&str>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => Some(l.as_str()),
                Segment::Param(_) => None,
                Segment::Greedy(_) => Some("{+}"),
            })
            .collect()
    }

    /// Match a raw request path; the variables' decoded values on success.
    fn match_path(&self, raw_path: &str) -> Option<BTreeMap<String, String>> {
        let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let request: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let mut params = BTreeMap::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let rest = request.get(index..).unwrap_or_default().join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(&rest, false));
                    return Some(params);
                }
                Segment::Literal(literal) => {
                    let got = request.get(index)?;
                    if got != literal && percent_decode(got, false) != *literal {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let got = request.get(index).filter(|s| !s.is_empty())?;
                    params.insert(name.clone(), percent_decode(got, false));
                }
            }
        }
        (request.len() == self.segments.len()).then_some(params)
    }
}

fn parse_segment(path: &str, part: &str) -> Result<Segment, RouteError> {
    if part.is_empty() {
        return Err(RouteError::EmptySegment(path.to_owned()));
    }
    let partial = || RouteError::PartialSegmentVariable {
        path: path.to_owned(),
        segment: part.to_owned(),
    };
    let Some(inner) = part.strip_prefix('{') else {
        if part.contains(['{', '}']) {
            return Err(partial());
        }
        return Ok(Segment::Literal(part.to_owned()));
    };
    let inner = inner.strip_suffix('}').ok_or_else(partial)?;
    let (name, greedy) = match inner.strip_suffix('+') {
        Some(name) => (name, true),
        None => (inner, false),
    };
    if name.is_empty() {
        return Err(RouteError::EmptyParamName(path.to_owned()));
    }
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(RouteError::InvalidParamName {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(if greedy {
        Segment::Greedy(name.to_owned())
    } else {
        Segment::Param(name.to_owned())
    })
}

/// A route key: `$default`, or a method and a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// The catch-all route.
    Default,
    /// `METHOD /path`.
    Route {
        /// Method, or `ANY`.
        method: RouteMethod,
        /// Path pattern.
        path: RoutePath,
    },
}

impl RouteKey {
    /// Parse `$default` or `METHOD /path` (one space between).
    pub fn parse(key: &str) -> Result<Self, RouteError> {
        if key == "$default" {
            return Ok(Self::Default);
        }
        let Some((method, path)) = key.split_once(' ') else {
            return Err(RouteError::Malformed(key.to_owned()));
        };
        if method.is_empty() || path.is_empty() {
            return Err(RouteError::Malformed(key.to_owned()));
        }
        Ok(Self::Route {
            method: method.parse()?,
            path: RoutePath::parse(path)?,
        })
    }

    /// Whether two keys would match the same requests with the same method.
    fn conflicts_with(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Default, Self::Default) => true,
            (
                Self::Route { method, path },
                Self::Route {
                    method: other_method,
                    path: other_path,
                },
            ) => method == other_method && path.shape() == other_path.shape(),
            _ => false,
        }
    }
}

impl FromStr for RouteKey {
    type Err = RouteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RouteKey {
    /// The key as API Gateway writes it, and as the event's `routeKey` carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("$default"),
            Self::Route { method, path } => write!(f, "{} {}", method.as_str(), path.as_str()),
        }
    }
}

/// The route a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a, T> {
    /// The matched key (its `Display` is the event's `routeKey`).
    pub route_key: &'a RouteKey,
    /// What the route leads to.
    pub target: &'a T,
    /// Decoded values of the path variables; `None` when the route has none, as the event
    /// then omits `pathParameters`.
    pub path_parameters: Option<BTreeMap<String, String>>,
}

/// How well a route matched; smaller is more specific.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    is_default: bool,
    greedy: bool,
    segments: Vec<u8>,
    any_method: bool,
}

/// The routes of one HTTP API, each leading to a target (an integration, a function…).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<(RouteKey, T)>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<T> RouteTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a route; refused when an existing route has the same method and path shape
    /// (`GET /a/{x}` and `GET /a/{y}` are the same route), as API Gateway refuses it.
    pub fn insert(&mut self, key: RouteKey, target: T) -> Result<(), RouteError> {
        if let Some((existing, _)) = self.routes.iter().find(|(k, _)| k.conflicts_with(&key)) {
            return Err(RouteError::Conflict {
                new: key.to_string(),
                existing: existing.to_string(),
            });
        }
        self.routes.push((key, target));
        Ok(())
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The most specific route for a request (raw, still percent-encoded path, no query);
    /// `None` means API Gateway's `404 {"message":"Not Found"}`.
    pub fn find(&self, method: &Method, raw_path: &str) -> Option<RouteMatch<'_, T>> {
        let mut best: Option<(Specificity, RouteMatch<'_, T>)> = None;
        for (key, target) in &self.routes {
            let candidate = match key {
                RouteKey::Default => (
                    Specificity {
                        is_default: true,
                        greedy: false,
                        segments: Vec::new(),
                        any_method: false,
                    },
                    RouteMatch {
                        route_key: key,
                        target,
                        path_parameters: None,
                    },
                ),
                RouteKey::Route { method: m, path } => {
                    if !m.matches(method) {
                        continue;
                    }
                    let Some(params) = path.match_path(raw_path) else {
                        continue;
                    };
                    (
                        Specificity {
                            is_default: false,
                            greedy: path.is_greedy(),
                            segments: path.segments.iter().map(Segment::rank).collect(),
                            any_method: *m == RouteMethod::Any,
                        },
                        RouteMatch {
                            route_key: key,
                            target,
                            path_parameters: (!params.is_empty()).then_some(params),
                        },
                    )
                }
            };
            let better = best
                .as_ref()
                .is_none_or(|(rank, _)| candidate.0.cmp(rank) == Ordering::Less);
            if better {
                best = Some(candidate);
            }
        }
        best.map(|(_, found)| found)
    }
}

impl<T> FromIterator<(RouteKey, T)> for RouteTable<T> {
    /// Collect routes, keeping the first of any conflicting pair.
    fn from_iter<I: IntoIterator<Item = (RouteKey, T)>>(iter: I) -> Self {
        let mut table = Self::new();
        for (key, target) in iter {
            let _ignored_conflict = table.insert(key, target);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> RouteKey {
        RouteKey::parse(text).expect("valid route key")
    }

    fn table(keys: &[&str]) -> RouteTable<String> {
        let mut table = RouteTable::new();
        for k in keys {
            table.insert(key(k), (*k).to_owned()).expect("no conflict");
        }
        table
    }

    /// The route chosen for `method path`, or `None`.
    fn pick(table: &RouteTable<String>, method: &str, path: &str) -> Option<String> {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        table.find(&method, path).map(|m| m.target.clone())
    }

    fn params(
        table: &RouteTable<String>,
        method: Method,
        path: &str,
    ) -> Option<BTreeMap<String, String>> {
        table.find(&method, path).expect("a match").path_parameters
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn valid_keys_parse_and_display_unchanged() {
        for text in [
            "$default",
            "GET /users/{id}",
            "ANY /items/{proxy+}",
            "POST /",
            "DELETE /a/b.c/{x-y_z.1}",
            "OPTIONS /{proxy+}",
            "HEAD /café",
        ] {
            assert_eq!(key(text).to_string(), text);
            assert_eq!(
                text.parse::<RouteKey>().map(|k| k.to_string()),
                Ok(text.to_owned())
            );
        }
        let RouteKey::Route { method, path } = key("ANY /items/{proxy+}") else {
            panic!("not $default");
        };
        assert_eq!(method, RouteMethod::Any);
        assert!(path.is_greedy());
        assert_eq!(path.as_str(), "/items/{proxy+}");
    }

    #[test]
    fn invalid_keys_say_what_is_wrong() {
        use RouteError as E;
        let cases: Vec<(&str, E)> = vec![
            ("", E::Malformed(String::new())),
            ("GET", E::Malformed("GET".into())),
            ("$DEFAULT", E::Malformed("$DEFAULT".into())),
            (" /x", E::Malformed(" /x".into())),
            ("get /x", E::BadMethod("get".into())),
            ("FETCH /x", E::BadMethod("FETCH".into())),
            ("GET x", E::PathNotAbsolute("x".into())),
            ("GET  /x", E::PathNotAbsolute(" /x".into())),
            ("GET /a//b", E::EmptySegment("/a//b".into())),
            ("GET /a/", E::EmptySegment("/a/".into())),
            ("GET /{}", E::EmptyParamName("/{}".into())),
            ("GET /{+}", E::EmptyParamName("/{+}".into())),
            (
                "GET /{a b}",
                E::InvalidParamName {
                    path: "/{a b}".into(),
                    name: "a b".into(),
                },
            ),
            (
                "GET /file-{id}.txt",
                E::PartialSegmentVariable {
                    path: "/file-{id}.txt".into(),
                    segment: "file-{id}.txt".into(),
                },
            ),
            (
                "GET /{id",
                E::PartialSegmentVariable {
                    path: "/{id".into(),
                    segment: "{id".into(),
                },
            ),
            (
                "GET /{proxy+}/x",
                E::GreedyNotLast {
                    path: "/{proxy+}/x".into(),
                    name: "proxy".into(),
                },
            ),
            (
                "GET /{id}/{id}",
                E::DuplicateParam {
                    path: "/{id}/{id}".into(),
                    name: "id".into(),
                },
            ),
            (
                "GET /{id}/{id+}",
                E::DuplicateParam {
                    path: "/{id}/{id+}".into(),
                    name: "id".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(RouteKey::parse(text), Err(expected), "{text:?}");
        }
        assert!(RouteError::GreedyNotLast {
            path: "/{p+}/x".into(),
            name: "p".into()
        }
        .to_string()
        .contains("{p+}"));
    }

    #[test]
    fn conflicting_routes_are_refused() {
        let mut table = table(&["GET /a/{x}", "$default"]);
        assert!(matches!(
            table.insert(key("GET /a/{y}"), String::new()),
            Err(RouteError::Conflict { .. })
        ));
        assert!(matches!(
            table.insert(key("$default"), String::new()),
            Err(RouteError::Conflict { .. })
        ));
        table
            .insert(key("POST /a/{y}"), String::new())
            .expect("other method is fine");
        table
            .insert(key("GET /a/b"), String::new())
            .expect("literal differs from variable");
        table
            .insert(key("GET /a/{proxy+}"), String::new())
            .expect("greedy differs from variable");
        assert_eq!(table.len(), 5);
        let collected: RouteTable<u8> = [(key("GET /x"), 1), (key("GET /x"), 2)]
            .into_iter()
            .collect();
        assert_eq!(collected.len(), 1);
        assert_eq!(
            collected.find(&Method::GET, "/x").map(|m| *m.target),
            Some(1)
        );
    }

    #[test]
    fn aws_documented_example() {
        let table = table(&[
            "GET /pets/dog/{id}",
            "GET /pets/{proxy+}",
            "ANY /{proxy+}",
            "$default",
        ]);
        assert_eq!(
            pick(&table, "GET", "/pets/dog/1").as_deref(),
            Some("GET /pets/dog/{id}")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/cat/1").as_deref(),
            Some("GET /pets/{proxy+}")
        );
        assert_eq!(
            pick(&table, "POST", "/test/5").as_deref(),
            Some("ANY /{proxy+}")
        );
        assert_eq!(pick(&table, "GET", "/").as_deref(), Some("$default"));
    }

    #[test]
    fn exact_method_beats_any_on_the_same_path() {
        let table = table(&["ANY /users/{id}", "GET /users/{id}"]);
        assert_eq!(
            pick(&table, "GET", "/users/1").as_deref(),
            Some("GET /users/{id}")
        );
        assert_eq!(
            pick(&table, "DELETE", "/users/1").as_deref(),
            Some("ANY /users/{id}")
        );
        assert_eq!(
            pick(&table, "PROPFIND", "/users/1").as_deref(),
            Some("ANY /users/{id}")
        );
    }

    #[test]
    fn literal_beats_variable_beats_greedy() {
        let table = table(&[
            "GET /pets/dog/1",
            "GET /pets/dog/{id}",
            "GET /pets/{kind}/1",
            "GET /pets/{kind}/{id}",
            "GET /pets/{proxy+}",
            "GET /{proxy+}",
        ]);
        assert_eq!(
            pick(&table, "GET", "/pets/dog/1").as_deref(),
            Some("GET /pets/dog/1")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/dog/2").as_deref(),
            Some("GET /pets/dog/{id}")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/cat/1").as_deref(),
            Some("GET /pets/{kind}/1")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/cat/2").as_deref(),
            Some("GET /pets/{kind}/{id}")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/cat/2/3").as_deref(),
            Some("GET /pets/{proxy+}")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/cat").as_deref(),
            Some("GET /pets/{proxy+}")
        );
        assert_eq!(
            pick(&table, "GET", "/toys/1").as_deref(),
            Some("GET /{proxy+}")
        );
        assert_eq!(
            pick(&table, "GET", "/pets").as_deref(),
            Some("GET /{proxy+}")
        );
    }

    #[test]
    fn full_match_with_any_beats_greedy_with_exact_method() {
        let table = table(&["ANY /pets/{id}", "GET /pets/{proxy+}"]);
        assert_eq!(
            pick(&table, "GET", "/pets/1").as_deref(),
            Some("ANY /pets/{id}")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/1/2").as_deref(),
            Some("GET /pets/{proxy+}")
        );
    }

    #[test]
    fn path_specificity_outranks_method() {
        let table = table(&["ANY /pets/dog", "GET /pets/{id}"]);
        assert_eq!(
            pick(&table, "GET", "/pets/dog").as_deref(),
            Some("ANY /pets/dog")
        );
        assert_eq!(
            pick(&table, "GET", "/pets/cat").as_deref(),
            Some("GET /pets/{id}")
        );
    }

    #[test]
    fn method_mismatch_falls_through_to_less_specific_routes() {
        let table = table(&["GET /pets/dog", "POST /pets/{id}", "$default"]);
        assert_eq!(
            pick(&table, "POST", "/pets/dog").as_deref(),
            Some("POST /pets/{id}")
        );
        assert_eq!(
            pick(&table, "PUT", "/pets/dog").as_deref(),
            Some("$default")
        );
    }

    #[test]
    fn default_is_last_and_absence_means_not_found() {
        let table = table(&["$default", "GET /"]);
        assert_eq!(pick(&table, "GET", "/").as_deref(), Some("GET /"));
        assert_eq!(pick(&table, "POST", "/").as_deref(), Some("$default"));
        assert_eq!(
            pick(&table, "GET", "/anything/else").as_deref(),
            Some("$default")
        );
        let found = table.find(&Method::PATCH, "/x").expect("default");
        assert_eq!(found.route_key, &RouteKey::Default);
        assert_eq!(found.path_parameters, None);

        let no_default = self::table(&["GET /a"]);
        assert_eq!(pick(&no_default, "GET", "/b"), None);
        assert_eq!(pick(&no_default, "POST", "/a"), None);
        assert!(RouteTable::<u8>::new().find(&Method::GET, "/").is_none());
        assert!(RouteTable::<u8>::new().is_empty());
    }

    #[test]
    fn root_and_greedy_edges() {
        let table = table(&["ANY /{proxy+}", "GET /a/{id}"]);
        assert_eq!(
            pick(&table, "GET", "/"),
            None,
            "greedy needs a non-empty rest"
        );
        assert_eq!(pick(&table, "GET", ""), None);
        assert_eq!(pick(&table, "GET", "/a/").as_deref(), Some("ANY /{proxy+}"));
        assert_eq!(
            params(&table, Method::GET, "/a/"),
            Some(map(&[("proxy", "a/")])),
            "a trailing slash is part of the rest"
        );
        assert_eq!(
            pick(&table, "GET", "/a//").as_deref(),
            Some("ANY /{proxy+}")
        );
        let root = self::table(&["GET /"]);
        assert_eq!(pick(&root, "GET", "/").as_deref(), Some("GET /"));
        assert_eq!(pick(&root, "GET", "").as_deref(), Some("GET /"));
        assert_eq!(pick(&root, "GET", "/x"), None);
        let items = self::table(&["GET /items/{proxy+}"]);
        assert_eq!(pick(&items, "GET", "/items"), None);
        assert_eq!(pick(&items, "GET", "/items/"), None);
    }

    #[test]
    fn path_parameters_are_decoded() {
        let table = table(&[
            "GET /users/{id}/posts/{post}",
            "ANY /files/{proxy+}",
            "GET /plain",
        ]);
        assert_eq!(
            params(&table, Method::GET, "/users/caf%C3%A9/posts/a%2Fb+c"),
            Some(map(&[("id", "café"), ("post", "a/b+c")]))
        );
        assert_eq!(
            params(&table, Method::PUT, "/files/dir%20one/sub/file%2Etxt"),
            Some(map(&[("proxy", "dir one/sub/file.txt")]))
        );
        assert_eq!(params(&table, Method::GET, "/plain"), None);
        // An encoded slash does not split a segment.
        assert_eq!(pick(&table, "GET", "/users/a%2Fb/posts"), None);
        // Unicode paths (as some clients send them unencoded) match too.
        assert_eq!(
            params(&table, Method::GET, "/users/ünï/posts/ç"),
            Some(map(&[("id", "ünï"), ("post", "ç")]))
        );
    }

    #[test]
    fn literal_segments_match_decoded_requests() {
        let table = table(&["GET /café/menu"]);
        assert_eq!(
            pick(&table, "GET", "/caf%C3%A9/menu").as_deref(),
            Some("GET /café/menu")
        );
        assert_eq!(
            pick(&table, "GET", "/café/menu").as_deref(),
            Some("GET /café/menu")
        );
        assert_eq!(
            pick(&table, "GET", "/Café/menu"),
            None,
            "paths are case-sensitive"
        );
    }

    #[test]
    fn empty_segments_do_not_fill_variables() {
        let table = table(&["GET /a/{id}/b"]);
        assert_eq!(pick(&table, "GET", "/a//b"), None);
        assert_eq!(
            pick(&table, "GET", "/a/1/b").as_deref(),
            Some("GET /a/{id}/b")
        );
        assert_eq!(pick(&table, "GET", "/a/1/b/"), None);
    }

    #[test]
    fn head_does_not_fall_back_to_get() {
        let table = table(&["GET /x"]);
        assert_eq!(pick(&table, "HEAD", "/x"), None);
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let keys = [
            "ANY /{proxy+}",
            "GET /pets/{id}",
            "GET /pets/dog",
            "ANY /pets/{id}",
            "$default",
        ];
        let mut reversed = keys;
        reversed.reverse();
        for order in [keys, reversed] {
            let table = table(&order);
            assert_eq!(
                pick(&table, "GET", "/pets/dog").as_deref(),
                Some("GET /pets/dog")
            );
            assert_eq!(
                pick(&table, "GET", "/pets/cat").as_deref(),
                Some("GET /pets/{id}")
            );
            assert_eq!(
                pick(&table, "POST", "/pets/cat").as_deref(),
                Some("ANY /pets/{id}")
            );
            assert_eq!(
                pick(&table, "POST", "/x/y").as_deref(),
                Some("ANY /{proxy+}")
            );
        }
    }
}
