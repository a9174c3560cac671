//! Following `Marker` / `NextToken` pagination safely: a list ends when the service says so
//! (no token, an empty one, or `IsTruncated=false`), and a token seen twice, or a truncated
//! page without a marker, is an error ([`Error::Pagination`]) rather than an endless loop
//! or a silently partial list (a partial list would make the planner think resources are
//! gone).
//!
//! Pure bookkeeping: no I/O here.

use std::collections::HashSet;

use super::error::{Error, Result};

/// The tokens one list walk has followed.
#[derive(Debug)]
pub struct Pages {
    action: &'static str,
    seen: HashSet<String>,
}

impl Pages {
    pub fn new(action: &'static str) -> Self {
        Pages {
            action,
            seen: HashSet::new(),
        }
    }

    /// `NextToken` style: the token of the next page, or `None` at the end (token absent or
    /// empty).
    pub fn next_token(&mut self, token: Option<String>) -> Result<Option<String>> {
        match token.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => self.follow(t).map(Some),
        }
    }

    /// `Marker` / `IsTruncated` style (RAM): the marker of the next page, or `None` when
    /// the page was not truncated.
    pub fn next_marker(
        &mut self,
        is_truncated: bool,
        marker: Option<String>,
    ) -> Result<Option<String>> {
        if !is_truncated {
            return Ok(None);
        }
        match marker.filter(|m| !m.is_empty()) {
            None => Err(Error::Pagination {
                action: self.action.to_string(),
                token: String::new(),
            }),
            Some(m) => self.follow(m).map(Some),
        }
    }

    fn follow(&mut self, token: String) -> Result<String> {
        if self.seen.insert(token.clone()) {
            Ok(token)
        } else {
            Err(Error::Pagination {
                action: self.action.to_string(),
                token,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_ends_without_a_token_and_fails_on_a_repeated_one() {
        let mut p = Pages::new("ListProjects");
        assert_eq!(p.next_token(Some("a".into())).unwrap(), Some("a".into()));
        assert_eq!(p.next_token(Some("b".into())).unwrap(), Some("b".into()));
        assert_eq!(p.next_token(Some(String::new())).unwrap(), None);
        assert_eq!(p.next_token(None).unwrap(), None);
        let e = p.next_token(Some("a".into())).unwrap_err();
        assert_eq!(e.metric_label(), "Pagination");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("ListProjects"), "{e}");
    }

    #[test]
    fn markers_follow_is_truncated() {
        let mut p = Pages::new("ListRoles");
        assert_eq!(p.next_marker(false, Some("m".into())).unwrap(), None);
        assert_eq!(
            p.next_marker(true, Some("m".into())).unwrap(),
            Some("m".into())
        );
        assert!(p.next_marker(true, Some("m".into())).is_err());
        assert!(
            p.next_marker(true, None).is_err(),
            "truncated without a marker"
        );
        assert!(p.next_marker(true, Some(String::new())).is_err());
    }
}
