//! What an operation's failure means to the executor.
//!
//! The cloud answers with an HTTP status and a `Code`; [`classify`] turns that, together with
//! the [`Op`] that was sent, into an [`OpErrorKind`]: the only thing the executor branches on.
//! The table lives here, in one place, so the fake runner of the tests and the real
//! `CloudOpRunner` classify alike. Branch on `Code`, never on `Message`.
//!
//! No I/O here.

use std::fmt;

use serde::Serialize;

use crate::plan::Op;

/// How the executor treats a failed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpErrorKind {
    /// The cloud says the end state already holds: attach of what is attached, detach or delete
    /// of what is gone. Counts as success only after [`super::OpRunner::confirm`] reads the
    /// intended end state back.
    AlreadyDone,
    /// Eventual consistency: a just-created role or policy is not yet visible to attach, to
    /// IMM, or to a follow-up update; a delete still sees a just-removed dependent
    /// (`DeleteConflict.*`). Retried with backoff until `consistency_timeout`.
    NotYetVisible,
    /// A create found its resource already there: a retry of a create whose reply was lost
    /// (a 5xx or a dropped connection after the cloud acted, retried by the client or the
    /// executor), or a concurrent run of the same manifests. Success only when
    /// [`super::OpRunner::created`] reads it back as ours (our tags) and as planned; else
    /// someone else's resource, reported as the cloud's answer and never retried.
    AlreadyExists,
    /// Throttling, 5xx, transport failure: can succeed later. Retried a bounded number of
    /// times (the client has already retried; this is the executor's second line).
    Transient,
    /// Anything else (validation, permission, quota, conflict with someone else's resource).
    /// Never retried.
    Permanent,
    /// Made by the executor, not the cloud: the belt-and-braces prune guard refused a delete
    /// (see `guard.rs`). No API call was made.
    Refused,
    /// Made by the executor: the read-back never showed the intended end state within
    /// `consistency_timeout`.
    Unconfirmed,
    /// Made by the executor: the plan is malformed (a dependency cycle). A bug: please report.
    InvalidPlan,
}

impl OpErrorKind {
    /// A stable label, usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            OpErrorKind::AlreadyDone => "already_done",
            OpErrorKind::NotYetVisible => "not_yet_visible",
            OpErrorKind::AlreadyExists => "already_exists",
            OpErrorKind::Transient => "transient",
            OpErrorKind::Permanent => "permanent",
            OpErrorKind::Refused => "refused",
            OpErrorKind::Unconfirmed => "unconfirmed",
            OpErrorKind::InvalidPlan => "invalid_plan",
        }
    }
}

/// A failed operation, in the API's own words.
///
/// `code`, `message` and `request_id` come from the error envelope when the cloud answered;
/// errors the executor makes itself use codes starting with `Immctl.`. Never holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct OpError {
    pub kind: OpErrorKind,
    /// The API action that failed, e.g. `AttachPolicyToRole` (or `GetProject` for a read-back).
    pub action: String,
    /// HTTP status, when the cloud answered.
    pub http_status: Option<u16>,
    /// The API's `Code`, e.g. `EntityNotExist.Role`.
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// immctl's one-sentence explanation of a rule the API's words do not state, chosen by
    /// [`explain`] from the op and the `Code` (never the message). Shown after the API's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<&'static str>,
}

impl fmt::Display for OpError {
    /// `AttachPolicyToRole: 404 EntityNotExist.Role: The role not exists: x. (RequestId 6A1F…)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.action)?;
        if let Some(status) = self.http_status {
            write!(f, "{status} ")?;
        }
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (RequestId {id})")?;
        }
        if let Some(x) = self.explanation {
            write!(f, " {x}")?;
        }
        Ok(())
    }
}

/// The rule of the IMM service-role guide behind a refused CreateProject / UpdateProject.
pub const SERVICE_ROLE_RULE: &str = "Note: whoever sets a project's service role must hold ram:PassRole on that role and every permission the role grants.";

/// Permission refusals, by `Code`: RAM / STS `NoPermission`, the IMM gateway's
/// `Forbidden.RAM` (what the emulator answers; the real IMM code is UNCONFIRMED, reference
/// §4.6, hence the other spellings).
pub fn is_permission_code(code: &str) -> bool {
    matches!(
        code,
        "NoPermission" | "Forbidden.RAM" | "Forbidden" | "Forbidden.NoPermission" | "AccessDenied"
    )
}

/// immctl's explanation for an answer to `op`, keyed on the op and the `Code` only: a
/// permission error on an op that sets a project's service role (CreateProject, or
/// UpdateProject changing `ServiceRole`) gets [`SERVICE_ROLE_RULE`].
pub fn explain(op: &Op, code: &str) -> Option<&'static str> {
    let sets_service_role = matches!(
        op,
        Op::CreateProject { .. }
            | Op::UpdateProject {
                service_role: Some(_),
                ..
            }
    );
    (sets_service_role && is_permission_code(code)).then_some(SERVICE_ROLE_RULE)
}

impl OpError {
    /// An error the cloud answered to `op`; the kind comes from [`classify`].
    pub fn from_api(
        op: &Op,
        http_status: Option<u16>,
        code: impl Into<String>,
        message: impl Into<String>,
        request_id: Option<String>,
    ) -> Self {
        let code = code.into();
        OpError {
            kind: classify(op, http_status, &code),
            action: op_name(op).to_string(),
            http_status,
            explanation: explain(op, &code),
            code,
            message: message.into(),
            request_id,
        }
    }

    /// An error the executor makes itself (`Immctl.*` code, no HTTP status, no RequestId).
    pub fn local(kind: OpErrorKind, action: &str, code: &str, message: impl Into<String>) -> Self {
        OpError {
            kind,
            action: action.to_string(),
            http_status: None,
            code: code.to_string(),
            message: message.into(),
            request_id: None,
            explanation: None,
        }
    }
}

/// The API action an [`Op`] sends.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::CreatePolicy { .. } => "CreatePolicy",
        Op::DeletePolicyVersion { .. } => "DeletePolicyVersion",
        Op::CreatePolicyVersion { .. } => "CreatePolicyVersion",
        Op::UpdatePolicyDescription { .. } => "UpdatePolicyDescription",
        Op::DeletePolicy { .. } => "DeletePolicy",
        Op::CreateRole { .. } => "CreateRole",
        Op::UpdateRole { .. } => "UpdateRole",
        Op::DeleteRole { .. } => "DeleteRole",
        Op::AttachPolicyToRole { .. } => "AttachPolicyToRole",
        Op::DetachPolicyFromRole { .. } => "DetachPolicyFromRole",
        Op::TagResources { .. } => "TagResources",
        Op::UntagResources { .. } => "UntagResources",
        Op::CreateProject { .. } => "CreateProject",
        Op::UpdateProject { .. } => "UpdateProject",
        Op::DeleteProject { .. } => "DeleteProject",
    }
}

/// Can this answer succeed later, whatever the operation? (throttling, 5xx, transport)
pub fn is_transient(http_status: Option<u16>, code: &str) -> bool {
    matches!(http_status, Some(s) if s >= 500)
        || code.contains("Throttling")
        || matches!(
            code,
            "ServiceUnavailable" | "InternalError" | "UnknownError" | "RequestTimeout"
        )
}

/// What an answer means for this operation. The table:
///
/// | op | AlreadyDone | NotYetVisible |
/// |---|---|---|
/// | AttachPolicyToRole | `EntityAlreadyExists.Role.Policy` | `EntityNotExist.Role`, `EntityNotExist.Policy` |
/// | DetachPolicyFromRole | `EntityNotExist.Role.Policy`, `EntityNotExist.Role`, `EntityNotExist.Policy` | |
/// | DeleteRole | `EntityNotExist.Role` | `DeleteConflict.*` |
/// | DeletePolicy | `EntityNotExist.Policy` | `DeleteConflict.*` |
/// | DeletePolicyVersion | `EntityNotExist.Policy.Version`, `EntityNotExist.Policy` | |
/// | DeleteProject | `ResourceNotFound` | |
/// | CreateProject, UpdateProject | | `EntityNotExist.Role*` (service role not yet visible to IMM) |
/// | CreateRole, CreatePolicy, CreateProject: `EntityAlreadyExists.Role`, `EntityAlreadyExists.Policy`, `ResourceAlreadyExists` | AlreadyExists | |
/// | UpdateRole, TagResources, UntagResources, CreatePolicyVersion, UpdatePolicyDescription | | `EntityNotExist.Role`, `EntityNotExist.Policy` |
///
/// `CreateRole` / `CreatePolicy` / `CreateProject` answering "already exists" is
/// **AlreadyExists**: ours (our reply was lost and the create retried) only if a read shows
/// our tags and the planned content; otherwise someone else made it since the plan.
pub fn classify(op: &Op, http_status: Option<u16>, code: &str) -> OpErrorKind {
    use OpErrorKind::*;
    if is_transient(http_status, code) {
        return Transient;
    }
    match op {
        Op::AttachPolicyToRole { .. } => match code {
            "EntityAlreadyExists.Role.Policy" => AlreadyDone,
            "EntityNotExist.Role" | "EntityNotExist.Policy" => NotYetVisible,
            _ => Permanent,
        },
        Op::DetachPolicyFromRole { .. } => match code {
            "EntityNotExist.Role.Policy" | "EntityNotExist.Role" | "EntityNotExist.Policy" => {
                AlreadyDone
            }
            _ => Permanent,
        },
        Op::DeleteRole { .. } => match code {
            "EntityNotExist.Role" => AlreadyDone,
            c if c.starts_with("DeleteConflict.") => NotYetVisible,
            _ => Permanent,
        },
        Op::DeletePolicy { .. } => match code {
            "EntityNotExist.Policy" => AlreadyDone,
            c if c.starts_with("DeleteConflict.") => NotYetVisible,
            _ => Permanent,
        },
        Op::DeletePolicyVersion { .. } => match code {
            "EntityNotExist.Policy.Version" | "EntityNotExist.Policy" => AlreadyDone,
            _ => Permanent,
        },
        Op::DeleteProject { .. } => match code {
            "ResourceNotFound" => AlreadyDone,
            _ => Permanent,
        },
        Op::CreateProject { .. } | Op::UpdateProject { .. } => match code {
            c if c.starts_with("EntityNotExist.Role") => NotYetVisible,
            "ResourceAlreadyExists" if matches!(op, Op::CreateProject { .. }) => AlreadyExists,
            _ => Permanent,
        },
        Op::UpdateRole { .. }
        | Op::TagResources { .. }
        | Op::UntagResources { .. }
        | Op::CreatePolicyVersion { .. }
        | Op::UpdatePolicyDescription { .. } => match code {
            "EntityNotExist.Role" | "EntityNotExist.Policy" => NotYetVisible,
            _ => Permanent,
        },
        Op::CreateRole { .. } => match code {
            "EntityAlreadyExists.Role" => AlreadyExists,
            _ => Permanent,
        },
        Op::CreatePolicy { .. } => match code {
            "EntityAlreadyExists.Policy" => AlreadyExists,
            _ => Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{PolicyRef, PolicyType, ProjectKey};

    fn attach() -> Op {
        Op::AttachPolicyToRole {
            role: "r".into(),
            policy: PolicyRef {
                policy_type: PolicyType::Custom,
                name: "p".into(),
            },
        }
    }

    #[test]
    fn attach_that_exists_is_already_done_and_missing_role_is_not_yet_visible() {
        assert_eq!(
            classify(&attach(), Some(409), "EntityAlreadyExists.Role.Policy"),
            OpErrorKind::AlreadyDone
        );
        assert_eq!(
            classify(&attach(), Some(404), "EntityNotExist.Role"),
            OpErrorKind::NotYetVisible
        );
        assert_eq!(
            classify(&attach(), Some(409), "LimitExceeded.Role.Policy"),
            OpErrorKind::Permanent
        );
    }

    #[test]
    fn create_of_what_exists_is_ours_only_if_a_read_says_so() {
        let op = Op::DeleteRole { name: "r".into() };
        assert_eq!(
            classify(&op, Some(404), "EntityNotExist.Role"),
            OpErrorKind::AlreadyDone
        );
        let create = Op::CreatePolicy {
            name: "p".into(),
            description: None,
            document: "{}".into(),
            tags: Default::default(),
        };
        assert_eq!(
            classify(&create, Some(409), "EntityAlreadyExists.Policy"),
            OpErrorKind::AlreadyExists
        );
        assert_eq!(
            classify(&create, Some(409), "LimitExceeded.Policy"),
            OpErrorKind::Permanent
        );
    }

    #[test]
    fn throttling_and_5xx_are_transient_for_every_op() {
        let del = Op::DeleteProject {
            key: ProjectKey {
                region: "cn-hangzhou".into(),
                name: "p".into(),
            },
        };
        assert_eq!(
            classify(&del, Some(400), "Throttling.User"),
            OpErrorKind::Transient
        );
        assert_eq!(
            classify(&del, Some(503), "Whatever"),
            OpErrorKind::Transient
        );
        assert_eq!(
            classify(&del, Some(404), "ResourceNotFound"),
            OpErrorKind::AlreadyDone
        );
        assert_eq!(
            classify(&del, Some(400), "InvalidArgument"),
            OpErrorKind::Permanent
        );
    }

    #[test]
    fn display_keeps_the_api_words() {
        let e = OpError::from_api(
            &attach(),
            Some(404),
            "EntityNotExist.Role",
            "The role not exists: r.",
            Some("6A1F".into()),
        );
        assert_eq!(
            e.to_string(),
            "AttachPolicyToRole: 404 EntityNotExist.Role: The role not exists: r. (RequestId 6A1F)"
        );
    }

    #[test]
    fn a_refused_service_role_change_explains_the_rule_keyed_on_the_code() {
        let key = ProjectKey {
            region: "cn-hangzhou".into(),
            name: "p".into(),
        };
        let create = Op::CreateProject {
            key: key.clone(),
            service_role: "svc".into(),
            description: None,
            template_id: None,
            limits: Default::default(),
            tags: Default::default(),
        };
        let e = OpError::from_api(
            &create,
            Some(403),
            "Forbidden.RAM",
            "User not authorized to operate on the specified resource.",
            Some("6A1F".into()),
        );
        assert_eq!(e.kind, OpErrorKind::Permanent);
        assert_eq!(
            e.to_string(),
            "CreateProject: 403 Forbidden.RAM: User not authorized to operate on the specified \
             resource. (RequestId 6A1F) Note: whoever sets a project's service role must hold \
             ram:PassRole on that role and every permission the role grants."
        );
        // Keyed on the Code: the same words under another code get no explanation...
        let other = OpError::from_api(
            &create,
            Some(400),
            "InvalidArgument",
            "User not authorized to operate on the specified resource.",
            None,
        );
        assert_eq!(other.explanation, None);
        // ...and an update that does not touch the service role gets none either.
        let limits_only = Op::UpdateProject {
            key: key.clone(),
            service_role: None,
            description: Some("d".into()),
            template_id: None,
            limits: Default::default(),
            tags: None,
        };
        assert_eq!(explain(&limits_only, "Forbidden.RAM"), None);
        let new_role = Op::UpdateProject {
            key,
            service_role: Some("svc2".into()),
            description: None,
            template_id: None,
            limits: Default::default(),
            tags: None,
        };
        assert_eq!(explain(&new_role, "NoPermission"), Some(SERVICE_ROLE_RULE));
        assert_eq!(explain(&attach(), "NoPermission"), None);
    }
}
