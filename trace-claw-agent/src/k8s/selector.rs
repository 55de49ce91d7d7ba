//! Which pods `--k8s-namespace` and `--k8s-pod-selector` pick: a namespace, and a label
//! selector in the syntax `kubectl -l` takes (`app=gateway,tier!=batch,env in (prod,staging),
//! !canary,team`).

use std::collections::BTreeMap;

use super::PodMeta;

/// A namespace and label requirements, all of which a pod must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSelector {
    namespace: Option<String>,
    requirements: Vec<Requirement>,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also met when the label is absent, as in Kubernetes).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also met when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`: the label is set.
    Exists(String),
    /// `!key`: the label is not set.
    Absent(String),
}

impl PodSelector {
    /// The selector of `namespace` and the label `selector`; `None` when both are absent or
    /// blank. The error says what in `selector` cannot be read.
    pub fn new(namespace: Option<&str>, selector: Option<&str>) -> Result<Option<Self>, String> {
        let namespace = namespace
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let requirements = match selector.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => split_outside_parens(s)
                .into_iter()
                .map(parse_requirement)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        if namespace.is_none() && requirements.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            namespace,
            requirements,
        }))
    }

    /// Whether `pod` is in the namespace (if one is set) and meets every label requirement.
    pub fn matches(&self, pod: &PodMeta) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == pod.namespace)
            && self.requirements.iter().all(|r| r.met_by(&pod.labels))
    }
}

impl Requirement {
    fn met_by(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Self::Exists(k) => labels.contains_key(k),
            Self::Absent(k) => !labels.contains_key(k),
        }
    }
}

/// `s` cut at the commas that are not inside `( )`.
fn split_outside_parens(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_requirement(text: &str) -> Result<Requirement, String> {
    let t = text.trim();
    let bad = |why: &str| format!("'{t}': {why}");
    if t.is_empty() {
        return Err(bad("empty requirement (two commas in a row?)"));
    }
    if let Some(key) = t.strip_prefix('!') {
        return Ok(Requirement::Absent(
            label_key(key.trim()).map_err(|e| bad(&e))?,
        ));
    }
    for (op, make) in [
        (
            "!=",
            Requirement::NotEquals as fn(String, String) -> Requirement,
        ),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((key, value)) = t.split_once(op) {
            let key = label_key(key.trim()).map_err(|e| bad(&e))?;
            let value = label_value(value.trim()).map_err(|e| bad(&e))?;
            return Ok(make(key, value));
        }
    }
    let mut words = t.splitn(2, char::is_whitespace);
    let key = label_key(words.next().unwrap_or_default()).map_err(|e| bad(&e))?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(Requirement::Exists(key));
    };
    let (set, negated) = if let Some(set) = rest.strip_prefix("notin") {
        (set, true)
    } else if let Some(set) = rest.strip_prefix("in") {
        (set, false)
    } else {
        return Err(bad(
            "expected =, ==, !=, in (...) or notin (...) after the key",
        ));
    };
    let inner = set
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad("a set is written (a,b,...)"))?;
    let values = inner
        .split(',')
        .map(|v| label_value(v.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    Ok(if negated {
        Requirement::NotIn(key, values)
    } else {
        Requirement::In(key, values)
    })
}

/// A label key: an optional DNS prefix and `/`, then a name of letters, digits, `-`, `_`, `.`.
fn label_key(key: &str) -> Result<String, String> {
    let name = key.rsplit_once('/').map_or(key, |(_, name)| name);
    if name.is_empty() || !key.chars().all(label_char_or_slash) {
        return Err(format!("'{key}' is not a label key"));
    }
    Ok(key.to_owned())
}

/// A label value: empty, or letters, digits, `-`, `_`, `.`.
fn label_value(value: &str) -> Result<String, String> {
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("'{value}' is not a label value"));
    }
    Ok(value.to_owned())
}

fn label_char_or_slash(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, labels: &[(&str, &str)]) -> PodMeta {
        PodMeta {
            name: "p".to_owned(),
            namespace: namespace.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            containers: Default::default(),
        }
    }

    fn picks(namespace: Option<&str>, selector: &str, p: &PodMeta) -> bool {
        PodSelector::new(namespace, Some(selector))
            .expect("valid")
            .expect("some")
            .matches(p)
    }

    #[test]
    fn every_requirement_form_is_read_and_all_must_hold() {
        let gw = pod(
            "apps",
            &[
                ("app", "gateway"),
                ("env", "prod"),
                ("app.kubernetes.io/part-of", "claw"),
            ],
        );
        assert!(picks(None, "app=gateway", &gw));
        assert!(picks(None, "app==gateway,env", &gw));
        assert!(!picks(None, "app=gateway,env=staging", &gw));
        assert!(picks(None, "env in (prod, staging),tier!=batch", &gw));
        assert!(!picks(None, "env notin (prod,staging)", &gw));
        assert!(picks(None, "tier notin (batch),!canary", &gw));
        assert!(!picks(None, "!env", &gw));
        assert!(picks(None, "app.kubernetes.io/part-of=claw", &gw));
        assert!(picks(Some("apps"), "app=gateway", &gw));
        assert!(!picks(Some("other"), "app=gateway", &gw));
        let only_ns = PodSelector::new(Some("apps"), None).expect("valid");
        assert!(only_ns.is_some_and(|s| s.matches(&gw)));
        assert_eq!(PodSelector::new(Some(" "), Some("")), Ok(None));
    }

    #[test]
    fn a_bad_selector_names_the_requirement() {
        for (text, part) in [
            ("app=gateway,,env", "empty requirement"),
            ("app gateway", "expected ="),
            ("env in prod", "(a,b,...)"),
            ("a b=c", "not a label key"),
            ("app=gate way", "not a label value"),
        ] {
            let e = PodSelector::new(None, Some(text)).expect_err(text);
            assert!(e.contains(part), "{text}: {e}");
        }
    }
}
