//! Which pod a task belongs to, from the annotations containerd's CRI plugin puts in the
//! OCI spec of every container it creates.

use std::collections::HashMap;

/// Annotation naming the kind of a CRI container: `sandbox` (the pod's pause container) or
/// `container` (an application container of the pod).
pub const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// Annotation naming the pod sandbox id of a CRI application container.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// How a task relates to a pod VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRole {
    /// A task with no CRI annotations (`ctr run`): a VM of its own, named after the task.
    Standalone,
    /// A CRI pod sandbox (pause container): starts the pod's VM, named after the task.
    PodSandbox,
    /// A CRI application container: joins the VM of the named sandbox.
    PodContainer {
        /// The pod sandbox id.
        sandbox_id: String,
    },
}

impl PodRole {
    /// The role the annotations of a task's OCI spec give it.
    ///
    /// # Errors
    ///
    /// A CRI container type that is neither `sandbox` nor `container`, or a `container`
    /// without a sandbox id: the message names the annotation.
    pub fn from_annotations(annotations: &HashMap<String, String>) -> Result<PodRole, String> {
        let Some(kind) = annotations.get(CONTAINER_TYPE_ANNOTATION) else {
            return Ok(PodRole::Standalone);
        };
        match kind.as_str() {
            "sandbox" => Ok(PodRole::PodSandbox),
            "container" => match annotations.get(SANDBOX_ID_ANNOTATION) {
                Some(id) if !id.is_empty() => Ok(PodRole::PodContainer {
                    sandbox_id: id.clone(),
                }),
                _ => Err(format!(
                    "annotation {CONTAINER_TYPE_ANNOTATION}=container needs \
                     {SANDBOX_ID_ANNOTATION}"
                )),
            },
            other => Err(format!(
                "annotation {CONTAINER_TYPE_ANNOTATION}={other:?}: expected \"sandbox\" or \
                 \"container\""
            )),
        }
    }

    /// The id of the pod (and its VM) the task `task_id` runs in.
    pub fn pod_id<'a>(&'a self, task_id: &'a str) -> &'a str {
        match self {
            PodRole::Standalone | PodRole::PodSandbox => task_id,
            PodRole::PodContainer { sandbox_id } => sandbox_id,
        }
    }

    /// Whether this task boots the pod's VM.
    pub fn starts_vm(&self) -> bool {
        !matches!(self, PodRole::PodContainer { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn roles_and_pod_ids_from_annotations() {
        let cases = [
            (
                "no CRI annotations",
                annotations(&[("a", "b")]),
                Ok(PodRole::Standalone),
                "t",
            ),
            (
                "pod sandbox",
                annotations(&[(CONTAINER_TYPE_ANNOTATION, "sandbox")]),
                Ok(PodRole::PodSandbox),
                "t",
            ),
            (
                "pod container",
                annotations(&[
                    (CONTAINER_TYPE_ANNOTATION, "container"),
                    (SANDBOX_ID_ANNOTATION, "pod1"),
                ]),
                Ok(PodRole::PodContainer {
                    sandbox_id: "pod1".into(),
                }),
                "pod1",
            ),
        ];
        for (name, annotations, role, pod) in cases {
            let found = PodRole::from_annotations(&annotations);
            assert_eq!(found, role, "{name}");
            assert_eq!(found.expect("a role").pod_id("t"), pod, "{name}");
        }
    }

    #[test]
    fn bad_cri_annotations_name_the_annotation() {
        let missing =
            PodRole::from_annotations(&annotations(&[(CONTAINER_TYPE_ANNOTATION, "container")]));
        assert!(missing
            .expect_err("refused")
            .contains(SANDBOX_ID_ANNOTATION));
        let unknown =
            PodRole::from_annotations(&annotations(&[(CONTAINER_TYPE_ANNOTATION, "pod")]));
        assert!(unknown
            .expect_err("refused")
            .contains(CONTAINER_TYPE_ANNOTATION));
    }
}
