// normlab data: dataset lookup by name (see registry.hpp).
#include "data/registry.hpp"

#include <cstdlib>
#include <filesystem>

#include "data/cifar10.hpp"
#include "data/gzip_file.hpp"
#include "data/idx.hpp"
#include "data/image_folder.hpp"

namespace nl::data {

namespace fs = std::filesystem;

namespace {

const char* kKnownNames = "mnist, fashion-mnist, cifar10, tinyshakespeare, text:PATH, folder:PATH";
const char* kFashionSystemDir = "/usr/share/datasets/fashion-mnist";

bool starts_with(const std::string& s, const std::string& prefix) { return s.starts_with(prefix); }

std::string data_dir_origin(const std::string& arg) {
  if (!arg.empty()) return "from --data-dir";
  if (const char* env = std::getenv("NORMLAB_DATA_DIR"); env && *env) return "from NORMLAB_DATA_DIR";
  return "the default; set NORMLAB_DATA_DIR or pass --data-dir";
}

// The file whose presence marks a directory as holding the dataset.
std::string marker_file(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::Mnist:
    case DatasetKind::FashionMnist: return "train-images-idx3-ubyte";
    case DatasetKind::Cifar10: return "data_batch_1.bin";
    default: return "";
  }
}

bool holds_dataset(const DatasetRef& ref, const std::string& path) {
  std::error_code ec;
  switch (ref.kind) {
    case DatasetKind::Text: return fs::is_regular_file(path, ec);
    case DatasetKind::Folder: return fs::is_directory(path, ec);
    default: return !find_plain_or_gz(path, marker_file(ref.kind)).empty();
  }
}

std::string how_to_get(const DatasetRef& ref, const std::string& data_dir) {
  const std::string dl = "  scripts/download_data.sh ";
  const std::string tail = " " + data_dir + "   (needs internet)\n";
  switch (ref.kind) {
    case DatasetKind::Mnist: return dl + "mnist" + tail;
    case DatasetKind::FashionMnist:
      return "  apt-get install dataset-fashion-mnist   (Debian; installs into " + std::string(kFashionSystemDir) +
             ")\n" + dl + "fashion-mnist" + tail;
    case DatasetKind::Cifar10: return dl + "cifar10" + tail;
    case DatasetKind::Text:
      if (ref.name == "tinyshakespeare") return dl + "tinyshakespeare" + tail;
      return "  check the path: it should be a UTF-8 text file\n";
    case DatasetKind::Folder: return "  check the path: it should be a folder with one sub-folder per class\n";
  }
  return "";
}

}  // namespace

DatasetRef parse_dataset_name(const std::string& name) {
  if (name == "mnist") return {DatasetKind::Mnist, name, ""};
  if (name == "fashion-mnist" || name == "fashion_mnist" || name == "fashionmnist")
    return {DatasetKind::FashionMnist, "fashion-mnist", ""};
  if (name == "cifar10" || name == "cifar-10") return {DatasetKind::Cifar10, "cifar10", ""};
  if (name == "tinyshakespeare" || name == "shakespeare")
    return {DatasetKind::Text, "tinyshakespeare", "tinyshakespeare/input.txt"};
  if (starts_with(name, "text:") && name.size() > 5) return {DatasetKind::Text, name, name.substr(5)};
  if (starts_with(name, "folder:") && name.size() > 7) return {DatasetKind::Folder, name, name.substr(7)};
  throw Error("unknown dataset '" + name + "' (known: " + kKnownNames + ")");
}

bool is_text_dataset(const std::string& name) { return parse_dataset_name(name).is_text(); }

std::string resolve_data_dir(const std::string& arg) {
  if (!arg.empty()) return arg;
  if (const char* env = std::getenv("NORMLAB_DATA_DIR"); env && *env) return env;
  return "data";
}

std::vector<std::string> dataset_search_paths(const std::string& name, const std::string& data_dir_arg) {
  const DatasetRef ref = parse_dataset_name(name);
  const fs::path dir = resolve_data_dir(data_dir_arg);
  switch (ref.kind) {
    case DatasetKind::Mnist: return {(dir / "mnist").string()};
    case DatasetKind::FashionMnist: return {(dir / "fashion-mnist").string(), kFashionSystemDir};
    case DatasetKind::Cifar10: return {(dir / "cifar-10-batches-bin").string()};
    case DatasetKind::Text:
    case DatasetKind::Folder: {
      if (ref.name == "tinyshakespeare") return {(dir / ref.path).string()};
      fs::path p(ref.path);
      if (p.is_absolute()) return {p.string()};
      return {p.string(), (dir / p).string()};
    }
  }
  return {};
}

std::string locate_dataset(const std::string& name, const std::string& data_dir_arg) {
  const DatasetRef ref = parse_dataset_name(name);
  std::vector<std::string> candidates = dataset_search_paths(name, data_dir_arg);
  for (const auto& c : candidates)
    if (holds_dataset(ref, c)) return c;

  const std::string dir = resolve_data_dir(data_dir_arg);
  std::string msg = "dataset '" + ref.name + "' not found. Looked in:\n";
  for (const auto& c : candidates) {
    msg += "  " + c;
    std::string marker = marker_file(ref.kind);
    if (!marker.empty()) msg += "   (no " + marker + " or " + marker + ".gz)";
    msg += "\n";
  }
  msg += "data dir: " + dir + " (" + data_dir_origin(data_dir_arg) + ")\n";
  msg += "How to get it:\n" + how_to_get(ref, dir);
  if (ref.kind != DatasetKind::Text && ref.kind != DatasetKind::Folder)
    msg += "  or pass --data-dir DIR (or set NORMLAB_DATA_DIR=DIR) where DIR contains " +
           fs::path(candidates.front()).filename().string() + "/\n";
  throw Error(msg);
}

DatasetSplit load_image_dataset(const std::string& name, const std::string& data_dir) {
  const DatasetRef ref = parse_dataset_name(name);
  NL_CHECK(!ref.is_text(), "dataset '", name, "' is a text corpus, not an image dataset");
  const std::string path = locate_dataset(name, data_dir);
  switch (ref.kind) {
    case DatasetKind::Mnist: return load_idx_dir(path, "mnist");
    case DatasetKind::FashionMnist: return load_idx_dir(path, "fashion-mnist", fashion_mnist_class_names());
    case DatasetKind::Cifar10: return load_cifar10_dir(path);
    case DatasetKind::Folder: return load_image_folder_split(path);
    case DatasetKind::Text: break;
  }
  throw Error("load_image_dataset: unhandled dataset '" + name + "'");
}

TextCorpus load_text_dataset(const std::string& name, const std::string& data_dir, double val_fraction) {
  const DatasetRef ref = parse_dataset_name(name);
  NL_CHECK(ref.is_text(), "dataset '", name, "' is an image dataset, not a text corpus (use text:PATH)");
  return TextCorpus::from_file(locate_dataset(name, data_dir), val_fraction);
}

}  // namespace nl::data
