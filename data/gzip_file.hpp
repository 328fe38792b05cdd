// normlab data: read a whole file into memory, transparently un-gzipping it.
//
// Format: a gzip file (RFC 1952) starts with the magic bytes 1f 8b, followed by a DEFLATE
// stream and an 8-byte trailer (CRC-32 and length of the uncompressed data). We detect gzip
// by those two magic bytes, not by the ".gz" suffix, so a renamed or already-gunzipped file
// still reads. Several gzip members back to back (what `cat a.gz b.gz` makes) are decoded
// one after another, as gunzip does.
//
// Every failure (missing file, truncated or corrupt gzip, CRC mismatch) throws nl::Error
// with the file name in the message: datasets are the most common thing users get wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nl::data {

// The uncompressed bytes of `path` (plain or gzip).
std::vector<uint8_t> read_file_bytes(const std::string& path);

// True when the first two bytes are the gzip magic 1f 8b.
bool is_gzip(const uint8_t* bytes, size_t size);

// Decompress gzip bytes held in memory; `name` is used in error messages only.
std::vector<uint8_t> gunzip(const uint8_t* bytes, size_t size, const std::string& name);

// `dir/name` if that file exists, else `dir/name.gz` if that exists, else "".
// Lets every loader accept both the compressed and the uncompressed layout.
std::string find_plain_or_gz(const std::string& dir, const std::string& name);

}  // namespace nl::data
