//! The one place where lightpod's errors become ttrpc statuses for containerd.

use containerd_shim::protos::ttrpc;
use lightpod_sandbox::{chain, ErrorKind, TaskError};
use ttrpc::Code;

/// The ttrpc status containerd receives for a failed request: a code containerd's
/// `errdefs` understands (NotFound, AlreadyExists, FailedPrecondition, InvalidArgument,
/// Unavailable, …), and the whole cause chain as its message.
pub fn to_status(error: &TaskError) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code(error.kind()), chain(error)))
}

/// A request whose body is malformed, named by `what`.
pub fn invalid(what: String) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(Code::INVALID_ARGUMENT, what))
}

/// A request lightpod does not support, with the reason.
pub fn unsupported(what: &str) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(Code::UNIMPLEMENTED, what))
}

fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
        ErrorKind::NotFound => Code::NOT_FOUND,
        ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
        ErrorKind::Unavailable => Code::UNAVAILABLE,
        ErrorKind::DeadlineExceeded => Code::DEADLINE_EXCEEDED,
        ErrorKind::Unimplemented => Code::UNIMPLEMENTED,
        ErrorKind::Internal => Code::INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_keeps_its_own_code() {
        let cases = [
            (TaskError::TaskNotFound("t".into()), Code::NOT_FOUND),
            (TaskError::AlreadyExists("t".into()), Code::ALREADY_EXISTS),
            (
                TaskError::InvalidRequest("bad".into()),
                Code::INVALID_ARGUMENT,
            ),
            (
                TaskError::WrongState {
                    id: "t".into(),
                    state: "running",
                    reason: "kill it first",
                },
                Code::FAILED_PRECONDITION,
            ),
        ];
        for (error, expected) in cases {
            let ttrpc::Error::RpcStatus(status) = to_status(&error) else {
                panic!("{error}: not a status");
            };
            assert_eq!(status.code(), expected, "{error}");
            assert_eq!(
                status.message,
                chain(&error),
                "{error}: message is the chain"
            );
        }
    }
}
