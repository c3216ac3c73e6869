#pragma once
// Small helpers the benchmark programs share: the CPU's model name and CSV writing.

#include <cstdlib>
#include <fstream>
#include <string>

namespace trimix_bench {

/// TRIMIX_DEVICE when set, else the first "model name" of /proc/cpuinfo, else "".
inline std::string cpu_model_name() {
  if (const char* env = std::getenv("TRIMIX_DEVICE"); env && *env) return env;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    std::string name = line.substr(colon + 1);
    name.erase(0, name.find_first_not_of(" \t"));
    return name;
  }
  return "";
}

/// True when `path` does not exist or holds nothing (then a CSV header is due).
inline bool file_is_empty(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  return !in.good() || in.tellg() <= 0;
}

/// One CSV field, quoted when it holds a comma, a quote or a newline.
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace trimix_bench
