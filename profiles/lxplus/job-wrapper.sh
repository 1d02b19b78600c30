#!/bin/bash
# dqmflow job wrapper for HTCondor (profiles/lxplus): the executable of every job.
#
# HTCondor starts jobs with an empty environment (getenv = false). This script gives the job the
# environment it was submitted from and runs Snakemake's job command:
#   job-wrapper.sh /afs/.../dqmflow/.venv/bin/python -m snakemake --snakefile ... (what the plugin passes)
#   job-wrapper.sh --snakefile ...                  (same, without the interpreter: python -m snakemake)
# The environment is the venv or conda env of that interpreter (or $DQMFLOW_ENV when set): it must
# live on AFS (/afs/cern.ch/work) or EOS, where every lxbatch node sees it.
set -euo pipefail

die() {
    echo "dqmflow job-wrapper: $*" >&2
    exit 2
}

env_dir="${DQMFLOW_ENV:-}"
if [[ -z "$env_dir" && $# -gt 0 && "$1" == /* && -x "$1" ]]; then
    env_dir="$(cd "$(dirname "$1")/.." && pwd)"
fi
[[ -n "$env_dir" ]] || die "no environment: pass the interpreter's path first or set DQMFLOW_ENV"
[[ -d "$env_dir" ]] || die "environment $env_dir is not visible on $(hostname): install it on /afs/cern.ch/work or EOS"

set +u
if [[ -f "$env_dir/bin/activate" && ! -d "$env_dir/conda-meta" ]]; then
    # shellcheck disable=SC1091
    source "$env_dir/bin/activate"
elif [[ -d "$env_dir/conda-meta" ]]; then
    export CONDA_PREFIX="$env_dir" CONDA_DEFAULT_ENV="$env_dir"
    export PATH="$env_dir/bin:${PATH:-/usr/bin:/bin}"
    for script in "$env_dir"/etc/conda/activate.d/*.sh; do
        # shellcheck disable=SC1090
        [[ -f "$script" ]] && source "$script"
    done
else
    die "$env_dir is neither a venv (bin/activate) nor a conda env (conda-meta/)"
fi
set -u

# A grid proxy (needed for root:// sources) must be a file the worker can read: on AFS, not /tmp.
if [[ -n "${X509_USER_PROXY:-}" ]]; then
    [[ -r "$X509_USER_PROXY" ]] || die "X509_USER_PROXY=$X509_USER_PROXY is not readable on $(hostname):" \
        "voms-proxy-init --voms cms --valid 168:00 --out ~/private/x509up; export X509_USER_PROXY=~/private/x509up"
fi

# Scratch for the caches of matplotlib and Keras (the job's HOME may be unset or read-only).
scratch="${_CONDOR_SCRATCH_DIR:-${TMPDIR:-/tmp}}"
export HOME="${HOME:-$scratch}"
export MPLCONFIGDIR="${MPLCONFIGDIR:-$scratch/.matplotlib}"
export KERAS_HOME="${KERAS_HOME:-$scratch/.keras}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONNOUSERSITE=1       # ~/.local packages on AFS must not shadow the environment's
export LANG="${LANG:-C.UTF-8}"

echo "dqmflow job-wrapper: $(hostname), environment $env_dir ($(command -v python))" >&2
if [[ $# -gt 0 && "$1" != -* ]]; then
    exec "$@"
fi
exec python -m snakemake "$@"
