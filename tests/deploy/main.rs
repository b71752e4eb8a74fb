//! The deployment artefacts against the real tools of their ecosystem, with
//! no cluster: the Helm chart (`helm lint --strict`, `helm template`, and
//! `kubernetes-validate --strict` on what it renders, for every `ci/`
//! values file), its schema's refusals, its copy of topics.yaml, and the
//! Dockerfile (parsed by BuildKit's parser; it copies exactly the
//! workspace's deployable binaries, which are the chart's commands).
//! The dashboards validate against Grafana's schema and query only
//! exported metrics. The alert rules pass `promtool check rules` and `promtool test rules`.
//! `scripts/tools.sh` installs the tools into .local/tools once.

mod alerts;
mod chart;
mod dashboards;
mod image;

use std::process::{Command, Output};

pub(crate) use sagastream_e2e::deploy::tools;
pub(crate) use sagastream_e2e::repo_root;

/// Runs a tool; its output, whether it succeeded or not.
pub(crate) fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?}: {e}"))
}

pub(crate) fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
