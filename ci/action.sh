#!/usr/bin/env bash
# The GitHub Action's step (action.yml), around `retap ci`: checks the runner (Linux, kernel, BTF,
# root or password-less sudo, Node.js 20.18+), sets retap up from the action's own folder when
# needed (the `setup` input), runs `retap ci` with the inputs as root, and makes sure every output
# and the step summary are written whatever happens: when retap cannot replay here it still
# reports why (verdict=error, exit code 3, or 64 for bad input).
# Reads the INPUT_* variables action.yml hands over; writes $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY.
set -uo pipefail

action=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
entry="$action/dist/cli/action.js"
addon="$action/build/Release/retap_native.node"
docs='docs/ci.md#self-hosted-runners'

say() { printf 'retap action: %s\n' "$*"; }
output() { [ -n "${GITHUB_OUTPUT:-}" ] && printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"; return 0; }

# Node.js 20.18 or newer on PATH? Sets node_found to what was found.
node_found=''
node_ok() {
  local v
  if ! command -v node >/dev/null 2>&1; then node_found='no node on PATH'; return 1; fi
  v=$(node --version 2>/dev/null) || { node_found="$(command -v node) does not run"; return 1; }
  node_found="node $v at $(command -v node)"
  v=${v#v}
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
  [ "$major" -gt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -ge 18 ]; }
}

# ---- gate -------------------------------------------------------------------------------------

# What stops retap here: one entry per problem, as CODE<tab>MESSAGE<tab>HINT.
problems=()
problem() { problems+=("$1"$'\t'"$2"$'\t'"$3"); }

check_runner() {
  local os kver kmaj kmin uid user out
  os=$(uname -s)
  if [ "$os" != Linux ]; then
    problem RETAP_CAPTURE_UNAVAILABLE "retap needs a Linux runner (eBPF, network namespaces); this one is ${RUNNER_OS:-$os}" \
      "Use runs-on: ubuntu-24.04 or a self-hosted Linux runner."
    return
  fi
  kver=$(uname -r)
  kmaj=${kver%%.*}; kmin=${kver#*.}; kmin=${kmin%%[!0-9]*}
  if [[ $kmaj =~ ^[0-9]+$ && $kmin =~ ^[0-9]+$ ]] && { [ "$kmaj" -lt 5 ] || { [ "$kmaj" -eq 5 ] && [ "$kmin" -lt 8 ]; }; }; then
    problem RETAP_CAPTURE_UNAVAILABLE "the kernel is $kver; retap needs Linux 5.8 or newer (BPF ring buffer)" \
      "Run the job on a newer kernel (ubuntu-22.04 and later runners have one)."
  fi
  if [ ! -r /sys/kernel/btf/vmlinux ]; then
    problem RETAP_CAPTURE_UNAVAILABLE "kernel BTF is missing (/sys/kernel/btf/vmlinux)" \
      "Use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Ubuntu 22.04+, Debian 12 stock kernels); in a container, mount the host's /sys."
  fi
  uid=$(id -u)
  user=$(id -un 2>/dev/null || echo "uid $uid")
  if [ "$uid" = 0 ]; then
    as=()
    say "the step runs as root (uid 0): retap runs without sudo"
  elif ! command -v sudo >/dev/null 2>&1; then
    problem RETAP_PERMISSION "retap needs root (eBPF, network namespaces, cgroups): this step runs as $user (uid $uid) and sudo is not installed" \
      "Run the runner as root, or install sudo and give $user password-less sudo (see $docs)."
  elif out=$(sudo -n -E true 2>&1); then
    as=(sudo -E env "PATH=$PATH")
    say "the step runs as $user (uid $uid): retap runs as root through password-less sudo"
  else
    out=${out//$'\n'/ }
    problem RETAP_PERMISSION "retap needs root (eBPF, network namespaces, cgroups): this step runs as $user (uid $uid) and 'sudo -n -E true' failed: ${out:-no message}" \
      "Run the runner as root, or give $user password-less sudo: echo '$user ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/retap (see $docs)."
  fi
  if node_ok; then
    say "using $node_found"
  else
    problem RETAP_ENV_SETUP "Node.js 20.18 or newer is needed to run retap ($node_found)" \
      "Install Node.js 20.18+ on the runner, or add a step 'uses: actions/setup-node@v4' with node-version 20 before this one."
  fi
}

built() { [ -f "$entry" ] && [ -f "$addon" ]; }

# Installs what retap needs (ci/setup --runtime) as the `setup` input says: auto (only when
# something is missing), true (always), false (never).
set_up() {
  local mode
  mode=$(printf '%s' "${INPUT_SETUP:-auto}" | tr '[:upper:]' '[:lower:]')
  case "$mode" in
    ''|auto) mode=auto ;;
    true|yes|1|on) mode=true ;;
    false|no|0|off) mode=false ;;
    *) problem RETAP_USAGE "input setup: '$INPUT_SETUP' must be auto, true or false" "Leave it out for auto."; return ;;
  esac
  if [ "$mode" = false ]; then
    built || problem RETAP_ENV_SETUP "retap is not built in $action (dist/cli/action.js or the native addon is missing) and setup is false" \
      "Set setup: auto (the default), or run ci/setup --runtime in the action's folder on the runner beforehand."
    return
  fi
  if [ "$mode" = auto ] && built && "${as[@]}" "$action/ci/setup" --runtime --check >/dev/null 2>&1; then
    say "retap is set up in $action (setup: auto)"
    return
  fi
  say "setting retap up: ${as[*]:+${as[*]} }$action/ci/setup --runtime --no-link"
  local rc=0
  "${as[@]}" "$action/ci/setup" --runtime --no-link || rc=$?
  if [ "$rc" != 0 ]; then
    problem RETAP_ENV_SETUP "ci/setup --runtime failed (exit $rc): retap's dependencies could not be installed or built on this runner" \
      "See the setup output above; on an air-gapped runner, run ci/setup --runtime in the action's folder beforehand and set setup: false."
  fi
}

esc_data() { local s=${1//%/%25}; s=${s//$'\r'/%0D}; printf '%s' "${s//$'\n'/%0A}"; }
esc_xml() { local s=${1//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; printf '%s' "${s//\"/&quot;}"; }

# When retap itself cannot run (no Node, not built): the summary, a JUnit report, the outputs and
# an annotation, written here. html, json and results stay empty: there is no replay to show.
report_without_retap() {
  local code=$1 headline=$2 dir md junit p c m h text='' list='' cases=''
  shift 2
  dir=${INPUT_REPORT_DIR:-retap-reports}
  [[ $dir = /* ]] || dir="$PWD/$dir"
  md="$dir/report.md"; junit="$dir/report.junit.xml"
  for p in "$@"; do
    IFS=$'\t' read -r c m h <<< "$p"
    list+="- \`$c\`: $m"$'\n'"  → $h"$'\n'
    text+="$c: $m → $h"$'\n'
    cases+="    <testcase classname=\"retap\" name=\"$(esc_xml "$c")\"><error message=\"$(esc_xml "$m")\" type=\"$(esc_xml "$c")\">$(esc_xml "$m → $h")</error></testcase>"$'\n'
  done
  if mkdir -p "$dir" 2>/dev/null; then
    printf '## 🛑 retap: error — %s\n\n%s\nexit code %s · nothing was replayed · runner requirements: %s\n' \
      "$headline" "$list" "$code" "$docs" > "$md"
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="retap" tests="%d" failures="0" errors="%d">\n  <testsuite name="retap: the runner" tests="%d" failures="0" errors="%d">\n%s  </testsuite>\n</testsuites>\n' \
      "$#" "$#" "$#" "$#" "$cases" > "$junit"
  else
    say "cannot write the reports to $dir"; md=''; junit=''
  fi
  [ -n "${GITHUB_STEP_SUMMARY:-}" ] && { [ -n "$md" ] && cat "$md" || printf '## 🛑 retap: error — %s\n\n%s' "$headline" "$list"; } >> "$GITHUB_STEP_SUMMARY"
  output verdict error
  output exit-code "$code"
  output junit "$junit"
  output summary "$md"
  output html ''
  output json ''
  output results ''
  output reports-dir "${md:+$dir}"
  printf '::error title=retap::%s\n' "$(esc_data "retap could not run: ${text%$'\n'}")"
}

cmd_gate() {
  as=()
  local start=$PWD wd=${INPUT_WORKING_DIRECTORY:-.}
  if ! cd "$wd" 2>/dev/null; then
    problem RETAP_USAGE "input working-directory: '$wd' is not a folder (from $start)" \
      "Give the folder that holds retap.yaml and the build, relative to the workspace."
  fi
  check_runner
  [ ${#problems[@]} = 0 ] && set_up

  local rc=0 c m h
  if [ ${#problems[@]} = 0 ]; then
    "${as[@]}" node "$entry" || rc=$?
  else
    IFS=$'\t' read -r c m h <<< "${problems[0]}"
    local messages='' hints=''
    for p in "${problems[@]}"; do
      IFS=$'\t' read -r _ m h <<< "$p"
      messages+="${messages:+; }$m"
      hints+="${hints:+ }$h"
    done
    say "retap cannot replay on this runner: $messages"
    if node_ok && [ -f "$entry" ]; then
      # retap is there but cannot replay: it reports why (as this user, replaying nothing)
      RETAP_ACTION_ERROR="$messages" RETAP_ACTION_ERROR_CODE="$c" RETAP_ACTION_ERROR_HINT="$hints" \
        node "$entry" || rc=$?
    else
      rc=3; [ "$c" = RETAP_USAGE ] && rc=64
      report_without_retap "$rc" "retap could not run on this runner" "${problems[@]}"
      exit "$rc"
    fi
  fi
  if [ -n "${GITHUB_OUTPUT:-}" ] && ! grep -q '^verdict=' "$GITHUB_OUTPUT" 2>/dev/null; then
    # whatever its code, it is not the gate's: the verdict is an error (3)
    report_without_retap 3 "retap ended without a verdict" \
      "RETAP_INTERNAL"$'\t'"retap ci exited with code $rc without writing its verdict (${as[*]:+run through ${as[*]%% *}, }see the log above)"$'\t'"Run retap doctor on the runner; report it if the log shows a crash."
    exit 3
  fi
  # the folder the reports went to (for an artifact upload step of the workflow's own)
  local written
  written=$(grep -m1 -E '^(results|summary|junit)=.' "${GITHUB_OUTPUT:-/dev/null}" 2>/dev/null | cut -d= -f2-)
  output reports-dir "${written:+$(dirname "$written")}"
  exit "$rc"
}

cmd_gate
