// normlab data: look up a dataset by name and find its files.
//
// Names:
//   "mnist"            <data-dir>/mnist                     (IDX, see idx.hpp)
//   "fashion-mnist"    <data-dir>/fashion-mnist, then /usr/share/datasets/fashion-mnist
//                      (Debian: apt-get install dataset-fashion-mnist)
//   "cifar10"          <data-dir>/cifar-10-batches-bin      (see cifar10.hpp)
//   "tinyshakespeare"  <data-dir>/tinyshakespeare/input.txt (text)
//   "text:PATH"        a UTF-8 text file (see text_corpus.hpp)
//   "folder:PATH"      an image folder, PATH/<class>/*.png or PATH/{train,test}/<class>/...
// A relative PATH is tried as given, then under <data-dir>.
//
// The data directory is the `data_dir` argument (e.g. --data-dir) if non-empty, else the
// environment variable NORMLAB_DATA_DIR, else "./data". When a dataset is missing, the
// nl::Error lists every path that was tried and how to get the data.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/text_corpus.hpp"

namespace nl::data {

enum class DatasetKind { Mnist, FashionMnist, Cifar10, Text, Folder };

struct DatasetRef {
  DatasetKind kind;
  std::string name;  // canonical name ("mnist", "text:input.txt", ...)
  std::string path;  // PATH of text:/folder:, else empty
  bool is_text() const { return kind == DatasetKind::Text; }
};

// Throws nl::Error listing the known names for an unknown one.
DatasetRef parse_dataset_name(const std::string& name);
bool is_text_dataset(const std::string& name);

// `arg` if non-empty, else $NORMLAB_DATA_DIR, else "data".
std::string resolve_data_dir(const std::string& arg = "");

// The candidate locations of a dataset, in the order they are tried.
std::vector<std::string> dataset_search_paths(const std::string& name, const std::string& data_dir = "");
// The first candidate that holds the dataset; throws the "not found" error otherwise.
std::string locate_dataset(const std::string& name, const std::string& data_dir = "");

// Load by name. Image datasets: train + test. Throws for text names (and vice versa).
DatasetSplit load_image_dataset(const std::string& name, const std::string& data_dir = "");
TextCorpus load_text_dataset(const std::string& name, const std::string& data_dir = "", double val_fraction = 0.1);

}  // namespace nl::data
