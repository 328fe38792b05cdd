// normlab core: safetensors reader and crash-safe writer. See safetensors.hpp for the format.
#include "core/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace nl {

// The data section is copied byte for byte into float buffers, which is only right on a
// little-endian machine (every platform normlab targets).
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

using json = nlohmann::json;

namespace {

// The reference implementation refuses headers above 100 MB; so do we, so a corrupt
// length cannot make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

std::string sys_error() { return std::strerror(errno); }

// ---------------------------------------------------------------- writing helpers

// Writes all of buf to fd, retrying short writes.
bool write_all(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    buf += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// ---------------------------------------------------------------- reading helpers

// Reads a JSON value that must be a non-negative integer (shape dims, offsets).
uint64_t read_uint(const json& v, const std::string& where, const std::string& file) {
  NL_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), "safetensors: ", file,
           ": ", where, " must be a non-negative integer, got ", v.dump());
  return v.get<uint64_t>();
}

}  // namespace

// ---------------------------------------------------------------- TensorFile

bool TensorFile::contains(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

const Tensor& TensorFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::string names;
  for (size_t i = 0; i < tensors.size() && i < 20; ++i) names += (i ? ", " : "") + tensors[i].first;
  if (tensors.size() > 20) names += ", ...";
  throw Error(detail::concat("safetensors: ", path, ": no tensor named '", name, "' (it has: ", names, ")"));
}

const std::string& TensorFile::meta(const std::string& key) const {
  auto it = metadata.find(key);
  NL_CHECK(it != metadata.end(), "safetensors: ", path, ": no metadata key '", key, "'");
  return it->second;
}

// ---------------------------------------------------------------- save

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // 1. Validate and build the header before touching the disk.
  json header = json::object();
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    NL_CHECK(!name.empty(), "save_safetensors: ", path, ": a tensor has an empty name");
    NL_CHECK(name != "__metadata__", "save_safetensors: ", path, ": '__metadata__' is reserved, not a tensor name");
    NL_CHECK(seen.insert(name).second, "save_safetensors: ", path, ": duplicate tensor name '", name, "'");
    NL_CHECK(t.defined(), "save_safetensors: ", path, ": tensor '", name, "' is undefined");
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  // Pad with spaces so the data section starts at an 8-byte aligned file offset.
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  uint64_t n = text.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);

  // 2. Write everything to a temporary file next to the target (same file system, so the
  //    rename below is atomic), flush it to the disk, then rename it over the target.
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  NL_CHECK(fd >= 0, "save_safetensors: cannot create ", tmp, ": ", sys_error());
  auto fail = [&](const std::string& what) {
    std::string err = sys_error();
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(detail::concat("save_safetensors: ", what, ": ", err, " (", path, " is unchanged)"));
  };
  if (!write_all(fd, len, 8) || !write_all(fd, text.data(), text.size())) fail("cannot write " + tmp);
  for (const auto& [name, t] : tensors) {
    Tensor c = t.contiguous();  // the file is row-major whatever the tensor's strides
    if (!write_all(fd, reinterpret_cast<const char*>(c.data()), static_cast<size_t>(c.numel()) * sizeof(float)))
      fail("cannot write " + tmp);
  }
  if (::fsync(fd) != 0) fail("cannot fsync " + tmp);
  if (::close(fd) != 0) {
    fd = -1;
    fail("cannot close " + tmp);
  }
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename " + tmp + " to " + path);
  // Make the rename itself durable (best effort: some file systems refuse to fsync a dir).
  int dir = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

// ---------------------------------------------------------------- load

TensorFile load_safetensors(const std::string& path) {
  auto where = [&](const auto&... parts) { return detail::concat("safetensors: ", path, ": ", parts...); };

  // Read the whole file (fixtures and checkpoints are small enough).
  std::FILE* f = std::fopen(path.c_str(), "rb");
  NL_CHECK(f != nullptr, where("cannot open: ", sys_error()));
  std::string bytes;
  char chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0) bytes.append(chunk, got);
  bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  NL_CHECK(!read_error, where("read error"));

  // 1. Header length.
  NL_CHECK(bytes.size() >= 8, where("truncated: the file has ", bytes.size(),
                                    " bytes, fewer than the 8-byte header length"));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  const uint64_t available = bytes.size() - 8;
  NL_CHECK(n <= available, where("header length ", n, " is larger than the ", available,
                                 " bytes that follow it (truncated or not a safetensors file)"));
  NL_CHECK(n <= kMaxHeaderBytes, where("header length ", n, " exceeds the 100 MB limit"));
  const uint64_t data_size = available - n;
  const char* data = bytes.data() + 8 + n;

  // 2. Header JSON. nlohmann keeps the last of duplicate keys silently, so count the
  //    top-level keys (depth 1) while parsing.
  std::string duplicate;
  std::set<std::string> keys;
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n),
                         [&](int depth, json::parse_event_t event, json& parsed) {
                           // A header nests three deep at most ({name: {shape: [..]}}); refuse
                           // deeper containers before they are built (their dump() in an error
                           // message would recurse once per level and overflow the stack).
                           if ((event == json::parse_event_t::object_start ||
                                event == json::parse_event_t::array_start) && depth > 2)
                             throw Error(where("header nests objects/arrays deeper than a safetensors "
                                               "header can (more than 3 levels)"));
                           if (event == json::parse_event_t::key && depth == 1 &&
                               !keys.insert(parsed.get<std::string>()).second && duplicate.empty())
                             duplicate = parsed.get<std::string>();
                           return true;
                         });
  } catch (const json::exception& e) {
    throw Error(where("header is not valid JSON: ", e.what()));
  }
  NL_CHECK(header.is_object(), where("header must be a JSON object, got ", header.type_name()));
  NL_CHECK(duplicate.empty(), where("duplicate tensor name '", duplicate, "' in the header"));

  TensorFile out;
  out.path = path;
  struct Entry {
    std::string name;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      NL_CHECK(info.is_object(), where("__metadata__ must be an object of strings"));
      for (const auto& [k, v] : info.items()) {
        NL_CHECK(v.is_string(), where("__metadata__ value for '", k, "' must be a string, got ", v.dump()));
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    NL_CHECK(!name.empty(), where("a tensor has an empty name (save_safetensors refuses those too)"));
    const std::string t = "tensor '" + name + "'";
    NL_CHECK(info.is_object(), where(t, ": entry must be an object, got ", info.dump()));
    for (const char* field : {"dtype", "shape", "data_offsets"})
      NL_CHECK(info.contains(field), where(t, ": missing field \"", field, "\""));
    const json& dtype = info["dtype"];
    NL_CHECK(dtype.is_string(), where(t, ": dtype must be a string"));
    NL_CHECK(dtype == "F32", where(t, ": dtype ", dtype.get<std::string>(),
                                   " is not supported (normlab reads only F32; convert with .float())"));
    const json& shape_json = info["shape"];
    NL_CHECK(shape_json.is_array(), where(t, ": shape must be an array"));
    Entry e{name, {}, 0, 0};
    // extent: the product of the non-zero dims, which Tensor's strides are built from; it
    // must fit even when a zero dim makes numel 0 (else [0, 2^62, 2^62] overflows int64).
    uint64_t numel = 1, extent = 1;
    bool overflow = false;
    for (const json& d : shape_json) {
      uint64_t dim = read_uint(d, t + " shape", path);
      overflow = overflow || (dim != 0 && extent > (UINT64_MAX / 4) / dim);
      if (dim != 0 && !overflow) extent *= dim;
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    NL_CHECK(!overflow, where(t, ": shape ", shape_json.dump(), " is too large"));
    const json& offsets = info["data_offsets"];
    NL_CHECK(offsets.is_array() && offsets.size() == 2, where(t, ": data_offsets must be [begin, end]"));
    e.begin = read_uint(offsets[0], t + " data_offsets", path);
    e.end = read_uint(offsets[1], t + " data_offsets", path);
    NL_CHECK(e.begin <= e.end && e.end <= data_size,
             where(t, ": data_offsets [", e.begin, ", ", e.end, "] out of range for a data section of ",
                   data_size, " bytes"));
    NL_CHECK(numel * 4 == e.end - e.begin, where(t, ": shape ", e.shape, " needs ", numel * 4, " bytes but data_offsets [",
                                                 e.begin, ", ", e.end, "] span ", e.end - e.begin));
    entries.push_back(std::move(e));
  }

  // 3. The tensors must tile the data section: sorted by offset, each starts where the
  //    previous ended, and the last ends at the end of the file.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    NL_CHECK(e.begin >= expected, where("tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end,
                                        "] overlap the previous tensor (which ends at ", expected, ")"));
    NL_CHECK(e.begin == expected, where("gap in the data section: bytes [", expected, ", ", e.begin,
                                        ") belong to no tensor"));
    expected = e.end;
  }
  NL_CHECK(expected == data_size, where("the data section has ", data_size, " bytes but the tensors cover only ",
                                        expected, " (trailing garbage or a wrong header)"));

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape);
    if (e.end > e.begin) std::memcpy(t.data(), data + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace nl
