#pragma once
// Small helpers the benchmark programs share: the CPU's model name, CSV writing and the parsing
// of command-line values.

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

/// The value of option argv[a]: "--name=value" (arg becomes "--name") or "--name value" (a moves
/// past the value); std::invalid_argument when none follows.
inline void take_value(int argc, char* argv[], int& a, std::string& arg, std::string& value) {
  const std::size_t eq = arg.find('=');
  if (eq != std::string::npos) {
    value = arg.substr(eq + 1);
    arg = arg.substr(0, eq);
  } else if (a + 1 < argc) {
    value = argv[++a];
  } else {
    throw std::invalid_argument(arg + " expects a value (see --help)");
  }
}

/// Items of a `separator`-separated list, empty items dropped; throws on an empty list.
inline std::vector<std::string> split_list(const std::string& text, char separator = ',') {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, separator))
    if (!item.empty()) items.push_back(item);
  if (items.empty()) throw std::invalid_argument("empty list '" + text + "'");
  return items;
}

/// The whole of `text` as an integer >= min_value, or std::invalid_argument naming option `name`.
inline std::int64_t parse_int(const std::string& name, const std::string& text, std::int64_t min_value) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty())
    throw std::invalid_argument(name + " expects an integer, got '" + text + "'");
  if (value < min_value)
    throw std::invalid_argument(name + " must be at least " + std::to_string(min_value) + ", got " + text);
  return std::int64_t(value);
}

/// The whole of `text` as a number, or std::invalid_argument naming option `name`.
inline double parse_double(const std::string& name, const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) throw std::invalid_argument(name + " expects a number, got '" + text + "'");
  return value;
}

}  // namespace trimix_bench
