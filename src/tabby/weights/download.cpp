// Downloads through libcurl's easy interface. The body streams into a temporary
// file and through SHA-256 at the same time, so big files are read once.
#include "tabby/weights/download.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>

#ifdef TABBY_HAVE_CURL
#include <curl/curl.h>
#endif

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/weights/sha256.h"

namespace tabby {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void check_expected_digest(const std::string& expected) {
  if (expected.empty()) return;
  bool hex = expected.size() >= 8 && expected.size() <= 64;
  for (char c : expected) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
  if (!hex) throw Error("'" + expected + "' is not a SHA-256 digest (8 to 64 hex digits)");
}

}  // namespace

bool sha256_matches(const std::string& actual_hex, const std::string& expected) {
  if (expected.size() < 8 || expected.size() > actual_hex.size()) return false;
  return lower(actual_hex).compare(0, expected.size(), lower(expected)) == 0;
}

#ifndef TABBY_HAVE_CURL

bool download_supported() { return false; }

void download_file(const std::string& url, const fs::path& dest, const std::string& sha256) {
  check_expected_digest(sha256);
  throw Error("cannot download '" + url + "': tabby was built without download support",
              "put the file at " + dest.string());
}

#else

bool download_supported() { return true; }

namespace {

struct Transfer {
  int fd = -1;
  int write_errno = 0;
  Sha256 hash;
  std::string label;
  int last_decile = -1;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(t->fd, data + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_errno = errno;
      return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    done += static_cast<size_t>(w);
  }
  t->hash.update(std::string_view(data, n));
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (total < (1 << 20) || log::quiet()) return 0;
  const int decile = static_cast<int>(now * 10 / total);
  if (decile != t->last_decile) {
    t->last_decile = decile;
    log::infof("downloading {}: {}% of {:.1f} MB", t->label, decile * 10, static_cast<double>(total) / 1e6);
  }
  return 0;
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

fs::path temp_path_for(const fs::path& dest) {
  std::random_device rd;
  return dest.parent_path() / ("." + dest.filename().string() + ".part" + std::to_string(rd() % 1000000000u));
}

}  // namespace

void download_file(const std::string& url, const fs::path& dest, const std::string& sha256) {
  check_expected_digest(sha256);
  const std::string hint = "check the network connection, or download " + url + " yourself and put it at " +
                           dest.string();
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  ensure_directory(dir);
  const fs::path tmp = temp_path_for(dir / dest.filename());

  Transfer t;
  t.label = dest.filename().string();
  t.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (t.fd < 0) {
    throw Error("cannot write '" + tmp.string() + "': " + std::strerror(errno),
                "choose a writable cache folder with TABBY_CACHE_DIR");
  }
  auto discard = [&] {
    if (t.fd >= 0) ::close(t.fd);
    t.fd = -1;
    std::error_code ec;
    fs::remove(tmp, ec);
  };

  init_curl_once();
  CURL* curl = curl_easy_init();
  if (!curl) {
    discard();
    throw Error("cannot download '" + url + "': libcurl failed to start");
  }
  char curl_error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // Abort a transfer that stalls (under 1 KB/s for a minute) rather than
  // limiting total time, which big files on slow links legitimately need.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "tabby/" TABBY_VERSION);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);

  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);

  if (rc != CURLE_OK) {
    std::string reason;
    if (rc == CURLE_HTTP_RETURNED_ERROR) reason = "the server answered HTTP " + std::to_string(status);
    else if (rc == CURLE_WRITE_ERROR && t.write_errno) reason = std::string("writing failed: ") + std::strerror(t.write_errno);
    else reason = curl_error[0] ? curl_error : curl_easy_strerror(rc);
    discard();
    throw Error("cannot download '" + url + "': " + reason, hint);
  }
  int err = ::fsync(t.fd) == 0 ? 0 : errno;
  if (::close(t.fd) != 0 && err == 0) err = errno;
  t.fd = -1;
  if (err != 0) {
    discard();
    throw Error("cannot write '" + dest.string() + "': " + std::strerror(err), "free some disk space and try again");
  }

  const std::string actual = t.hash.hex_digest();
  if (!sha256.empty() && !sha256_matches(actual, sha256)) {
    discard();
    throw Error("downloaded '" + url + "' but its SHA-256 is " + actual + ", not the expected " + lower(sha256),
                "the download was corrupted or the file on the server changed; try again, or put a trusted copy at " +
                    dest.string());
  }
  std::error_code ec;
  fs::rename(tmp, dest, ec);
  if (ec) {
    discard();
    throw Error("cannot move the download into '" + dest.string() + "': " + ec.message());
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

#endif

}  // namespace tabby
