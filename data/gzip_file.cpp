// normlab data: whole-file reading with gzip detection (see gzip_file.hpp).
//
// Why inflate() on an in-memory buffer instead of gzopen/gzread: gzread reports a truncated
// file only through gzerror() after the fact and silently passes through non-gzip data;
// driving inflate() ourselves lets us say exactly what went wrong and where.
#include "data/gzip_file.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/tensor.hpp"

namespace nl::data {

namespace {

std::vector<uint8_t> read_raw(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  // Size the buffer once from the file length; fall back to chunked reads for pipes.
  if (std::fseek(f, 0, SEEK_END) == 0) {
    long len = std::ftell(f);
    if (len > 0) bytes.reserve(static_cast<size_t>(len));
    std::fseek(f, 0, SEEK_SET);
  }
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw Error("error while reading '" + path + "'");
  return bytes;
}

}  // namespace

bool is_gzip(const uint8_t* bytes, size_t size) { return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

std::vector<uint8_t> gunzip(const uint8_t* bytes, size_t size, const std::string& name) {
  NL_CHECK(is_gzip(bytes, size), "'", name, "' is not gzip data (no 1f 8b magic)");
  std::vector<uint8_t> out;
  // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32 (of the last
  // member): a good first guess that avoids re-allocating a 47 MB buffer repeatedly. In a
  // truncated file those bytes are arbitrary, so trust the guess only when plausible
  // (ratio <= 64); otherwise start at 4x and let the buffer double as needed.
  size_t guess = 4 * size;
  if (size >= 18) {
    uint32_t isize = uint32_t(bytes[size - 4]) | uint32_t(bytes[size - 3]) << 8 |
                     uint32_t(bytes[size - 2]) << 16 | uint32_t(bytes[size - 1]) << 24;
    if (isize <= 64 * size + (1u << 20)) guess = isize;
  }
  out.resize(std::max<size_t>(guess, 1024));

  z_stream zs{};
  // 15 = max window; +16 = expect a gzip wrapper (and check its CRC and length).
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw Error("zlib: inflateInit2 failed for '" + name + "'");
  size_t in_pos = 0, out_pos = 0;
  std::string problem;
  while (true) {
    if (out_pos == out.size()) {
      // Deflate can expand ~1000x, so a small crafted file could otherwise exhaust memory
      // (std::bad_alloc) instead of failing with a message. No dataset normlab reads is near this.
      constexpr size_t kMaxDecompressed = size_t(4) << 30;
      if (out.size() >= kMaxDecompressed) {
        inflateEnd(&zs);
        throw Error("'" + name + "': decompresses to more than 4 GiB; refusing to read it into memory");
      }
      out.resize(std::min(out.size() * 2, kMaxDecompressed));
    }
    // avail_in/avail_out are 32-bit: feed at most 1 GiB per call.
    const size_t kMaxStep = size_t(1) << 30;
    zs.next_in = const_cast<Bytef*>(bytes + in_pos);
    zs.avail_in = static_cast<uInt>(std::min(size - in_pos, kMaxStep));
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(std::min(out.size() - out_pos, kMaxStep));
    const uInt in_before = zs.avail_in, out_before = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_before - zs.avail_in;
    out_pos += out_before - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Another gzip member may follow (concatenated .gz files); trailing zero padding
      // (left by some tape/archive tools) is ignored like gunzip does.
      size_t rest = in_pos;
      while (rest < size && bytes[rest] == 0) ++rest;
      if (rest == size) break;
      if (!is_gzip(bytes + in_pos, size - in_pos)) {
        problem = "unexpected non-gzip data after the end of the compressed stream at byte " +
                  std::to_string(in_pos);
        break;
      }
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out == 0) continue;  // output full: grow and retry
    if (rc == Z_BUF_ERROR) {  // no progress possible: the input ran out mid-stream
      problem = "truncated gzip data: compressed stream ends early after " + std::to_string(size) +
                " bytes (" + std::to_string(out_pos) + " bytes decompressed); re-download the file";
    } else if (rc == Z_DATA_ERROR) {
      problem = std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "invalid deflate stream") +
                ") at compressed byte " + std::to_string(in_pos);
    } else if (rc == Z_MEM_ERROR) {
      problem = "out of memory while decompressing";
    } else {
      problem = "zlib error " + std::to_string(rc) + (zs.msg ? std::string(": ") + zs.msg : "");
    }
    break;
  }
  inflateEnd(&zs);
  if (!problem.empty()) throw Error("cannot read '" + name + "': " + problem);
  out.resize(out_pos);
  out.shrink_to_fit();
  return out;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::vector<uint8_t> raw = read_raw(path);
  if (!is_gzip(raw.data(), raw.size())) return raw;
  return gunzip(raw.data(), raw.size(), path);
}

std::string find_plain_or_gz(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path plain = fs::path(dir) / name;
  if (fs::is_regular_file(plain, ec)) return plain.string();
  fs::path gz = fs::path(dir) / (name + ".gz");
  if (fs::is_regular_file(gz, ec)) return gz.string();
  return "";
}

}  // namespace nl::data
