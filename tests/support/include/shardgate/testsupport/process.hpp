// Child processes for test support: run a command to completion, spawn a long-lived one, ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace shardgate::testsupport {

using namespace std::chrono_literals;

// Result of a finished command: exit_code is the exit status, or 128 + signal when it was killed.
struct command_result {
    int exit_code = 0;
    std::string output;  // stdout and stderr, interleaved
    bool timed_out = false;
};

struct command_options {
    // Run as the `postgres` system user when this process is root (Postgres refuses root).
    bool as_postgres = false;
    std::chrono::milliseconds timeout = 120s;  // the whole process group is killed after this
    std::filesystem::path cwd = "/";
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null, in its own process group.
command_result run_command(const std::vector<std::string>& argv,
                           const command_options& options = {});

// Like run_command, but throws std::runtime_error with the command and its output unless it
// exits 0. Returns the output.
std::string check_command(const std::vector<std::string>& argv,
                          const command_options& options = {});

// How to start a long-lived child (see spawn_process).
struct spawn_options {
    bool as_postgres = false;
    std::filesystem::path cwd = "/";
    std::filesystem::path output_file;  // stdout+stderr appended here; empty: /dev/null
    // PR_SET_PDEATHSIG(SIGKILL): the child dies with the thread that spawned it, so a crashed
    // test cannot leave it running. Spawn from a thread that outlives the child.
    bool die_with_parent = true;
    int stdin_fd = -1;  // -1: /dev/null
};

// Starts argv in its own process group without waiting. The caller reaps it (waitpid).
pid_t spawn_process(const std::vector<std::string>& argv, const spawn_options& options);

// Waits up to `timeout` for a child of this process to exit; returns its exit code
// (128 + signal when killed) or nullopt if it is still running.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);

// True when `pid` exists and is not a zombie (works for processes that are not our children).
bool process_alive(pid_t pid);

// Waits until none of `pids` is alive; false on timeout.
bool wait_until_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout);

// All descendants of `pid` (children, grandchildren, ...) found in /proc.
std::vector<pid_t> descendants(pid_t pid);

bool running_as_root();

// chown to the postgres user and group when running as root; no-op otherwise.
void chown_to_postgres(const std::filesystem::path& path, bool recursive = false);

// A loopback TCP port that was free a moment ago (bind 127.0.0.1:0, read it back, close).
int free_port();

// True when a TCP connection to host:port succeeds right now.
bool port_accepts(int port, const std::string& host = "127.0.0.1");

// Last `max_lines` lines of a text file ("" if it does not exist).
std::string file_tail(const std::filesystem::path& path, std::size_t max_lines = 40);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& text);

}  // namespace shardgate::testsupport
