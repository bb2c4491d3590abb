// Creates Postgres data directories quickly: copies of one cached initdb output.
#include "initdb_cache.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <vector>

#include "shardgate/testsupport/pg_server.hpp"
#include "shardgate/testsupport/process.hpp"
#include "shardgate/testsupport/work_dir.hpp"

namespace shardgate::testsupport {
namespace {

std::string pg_tool(const char* name) {
    return (pg_bindir() / name).string();
}

command_options postgres_in(const std::filesystem::path& cwd) {
    command_options o;
    o.as_postgres = true;
    o.cwd = cwd;
    return o;
}

// initdb into `data_dir` (must not exist), with the include line for per-server settings.
// 1 MB WAL segments instead of 16: every copy and base backup moves 15 MB less.
void run_initdb(const std::filesystem::path& data_dir) {
    const auto parent = data_dir.parent_path();
    const auto pwfile = parent / (data_dir.filename().string() + ".pwfile");
    write_file(pwfile, std::string(pg_server::superuser_password) + "\n");
    chown_to_postgres(pwfile);
    command_result r = run_command(
        {pg_tool("initdb"), "-D", data_dir.string(), "-U", pg_server::superuser,
         "--pwfile=" + pwfile.string(), "--auth-local=trust", "--auth-host=scram-sha-256",
         "--locale=C", "--encoding=UTF8", "--no-sync", "--no-instructions", "--wal-segsize=1"},
        postgres_in(parent));
    std::filesystem::remove(pwfile);
    if (r.exit_code != 0)
        throw std::runtime_error("initdb " + data_dir.string() + " failed:\n" + r.output);
    std::ofstream(data_dir / "postgresql.conf", std::ios::app)
        << "\n# shardgate test support: per-server settings\ninclude 'sg_server.conf'\n";
}

// Nobody but us (root or postgres) may have written the cache: it is run as postgres.
bool trustworthy(const std::filesystem::path& dir, const std::string& version) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 022) != 0)
        return false;
    const passwd* pw = ::getpwnam("postgres");
    const bool owner_ok =
        st.st_uid == ::geteuid() || st.st_uid == 0 || (pw != nullptr && st.st_uid == pw->pw_uid);
    return owner_ok && read_file(dir / "version") == version &&
           std::filesystem::exists(dir / "data" / "PG_VERSION");
}

std::string cache_key(const std::string& version) {
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across builds, unlike std::hash
    for (char c : version + "/" + std::to_string(::geteuid())) {
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

std::filesystem::path build_cache(const std::filesystem::path& final_dir,
                                  const std::string& version) {
    std::string tmpl = final_dir.string() + ".new-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    const std::filesystem::path scratch = buf.data();
    register_for_crash_cleanup(scratch);
    try {
        chown_to_postgres(scratch);
        run_initdb(scratch / "data");
        write_file(scratch / "version", version);
        chown_to_postgres(scratch, true);
    } catch (...) {
        std::filesystem::remove_all(scratch);
        throw;
    }
    // Atomic publication: if another process won the race, use its copy.
    if (::rename(scratch.c_str(), final_dir.c_str()) != 0) std::filesystem::remove_all(scratch);
    return final_dir;
}

// The cached template directory, or nullopt when caching is off.
std::optional<std::filesystem::path> template_dir() {
    static std::mutex mutex;
    static std::optional<std::filesystem::path> cached;
    static bool decided = false;
    std::lock_guard lock(mutex);
    if (decided) return cached;
    const char* env = std::getenv("SHARDGATE_TEST_INITDB_CACHE");
    if (env != nullptr && std::string(env) == "0") {
        decided = true;
        return cached;
    }
    // Bump the suffix when run_initdb's options change, so old caches are not reused.
    const std::string version = check_command({pg_tool("postgres"), "--version"}) + "initdb-v2";
    const std::filesystem::path dir = "/tmp/shardgate-initdb-" + cache_key(version);
    if (!trustworthy(dir, version)) {
        if (std::filesystem::exists(dir)) {
            // Damaged, or not ours: neither trust nor delete it, just do without the cache.
            std::fprintf(stderr,
                         "testsupport: ignoring %s (not a valid initdb cache); running initdb\n",
                         dir.c_str());
            decided = true;
            return cached;
        }
        build_cache(dir, version);
        if (!trustworthy(dir, version))
            throw std::runtime_error("cannot create the initdb cache " + dir.string());
    }
    cached = dir;
    decided = true;
    return cached;
}

}  // namespace

void create_cluster(const std::filesystem::path& data_dir) {
    if (auto cache = template_dir()) {
        // cp -a keeps the postgres ownership and the 0700 mode Postgres insists on.
        check_command(
            {"cp", "-a", "--reflink=auto", (*cache / "data").string(), data_dir.string()});
    } else {
        run_initdb(data_dir);
    }
}

}  // namespace shardgate::testsupport
