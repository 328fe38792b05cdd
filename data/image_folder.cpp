// normlab data: image-folder datasets decoded with stb_image (see image_folder.hpp).
//
// This is the one translation unit of normlab_data that compiles stb_image's implementation.
#include "data/image_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

// Only the decoders we use: keeps the object small and the attack surface of a decoder
// run on arbitrary files smaller.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO_WARNINGS
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace nl::data {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool is_hidden(const fs::path& p) { return !p.filename().empty() && p.filename().string()[0] == '.'; }

std::vector<fs::path> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (is_hidden(e.path())) continue;
    if (want_dirs ? e.is_directory() : (e.is_regular_file() && is_image_file(e.path()))) out.push_back(e.path());
  }
  NL_CHECK(!ec, "cannot list '", dir.string(), "': ", ec.message());
  std::sort(out.begin(), out.end());  // directory order is arbitrary: sort for reproducible labels
  return out;
}

}  // namespace

ImageDataset load_image_folder(const std::string& root, const std::string& name) {
  std::error_code ec;
  NL_CHECK(fs::is_directory(root, ec), "image folder '", root, "' does not exist or is not a directory");
  std::vector<fs::path> class_dirs = sorted_entries(root, /*want_dirs=*/true);
  NL_CHECK(!class_dirs.empty(), "image folder '", root,
           "' has no class sub-folders (expected root/<class_name>/*.png|jpg)");

  struct Item {
    std::string path;
    int32_t label;
  };
  std::vector<Item> items;
  ImageDataset ds;
  ds.name = name.empty() ? root : name;
  for (size_t k = 0; k < class_dirs.size(); ++k) {
    std::vector<fs::path> files = sorted_entries(class_dirs[k], /*want_dirs=*/false);
    NL_CHECK(!files.empty(), "image folder: class folder '", class_dirs[k].string(), "' has no .png/.jpg images");
    for (const auto& f : files) items.push_back({f.string(), static_cast<int32_t>(k)});
    ds.class_names.push_back(class_dirs[k].filename().string());
  }

  // Pass 1: read only the headers, to check sizes and choose the channel count before
  // decoding (and allocating) anything.
  int width = 0, height = 0;
  bool any_color = false;
  for (size_t i = 0; i < items.size(); ++i) {
    int w, h, comp;
    if (!stbi_info(items[i].path.c_str(), &w, &h, &comp))
      throw Error("cannot read image '" + items[i].path + "': " + stbi_failure_reason());
    if (i == 0) {
      width = w;
      height = h;
    } else if (w != width || h != height) {
      throw Error("image '" + items[i].path + "' is " + std::to_string(w) + "x" + std::to_string(h) +
                  " (width x height) but '" + items[0].path + "' is " + std::to_string(width) + "x" +
                  std::to_string(height) + ": all images of a folder dataset must have the same size");
    }
    any_color = any_color || comp >= 3;  // comp: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  }

  ds.n = static_cast<int64_t>(items.size());
  ds.channels = any_color ? 3 : 1;
  ds.height = height;
  ds.width = width;
  ds.num_classes = static_cast<int32_t>(class_dirs.size());
  ds.pixels.resize(ds.n * ds.image_size());
  ds.labels.resize(ds.n);
  const int64_t plane = ds.height * ds.width;

  // Pass 2: decode, asking stb for exactly C channels, and de-interleave HWC -> CHW.
  for (int64_t i = 0; i < ds.n; ++i) {
    int w, h, comp;
    unsigned char* img = stbi_load(items[i].path.c_str(), &w, &h, &comp, static_cast<int>(ds.channels));
    if (!img) throw Error("cannot decode image '" + items[i].path + "': " + stbi_failure_reason());
    if (w != width || h != height) {  // the header said otherwise: a corrupt file
      stbi_image_free(img);
      throw Error("image '" + items[i].path + "' decoded to " + std::to_string(w) + "x" + std::to_string(h) +
                  ", expected " + std::to_string(width) + "x" + std::to_string(height));
    }
    uint8_t* dst = ds.pixels.data() + i * ds.image_size();
    for (int64_t c = 0; c < ds.channels; ++c)
      for (int64_t k = 0; k < plane; ++k) dst[c * plane + k] = img[k * ds.channels + c];
    stbi_image_free(img);
    ds.labels[i] = items[i].label;
  }
  return ds;
}

DatasetSplit load_image_folder_split(const std::string& root, double holdout, uint64_t seed) {
  std::error_code ec;
  fs::path train_dir = fs::path(root) / "train";
  fs::path test_dir = fs::path(root) / "test";
  if (!fs::is_directory(test_dir, ec)) test_dir = fs::path(root) / "val";
  if (fs::is_directory(train_dir, ec) && fs::is_directory(test_dir, ec)) {
    DatasetSplit split;
    split.train = load_image_folder(train_dir.string(), root + "/train");
    split.test = load_image_folder(test_dir.string(), root + "/" + test_dir.filename().string());
    NL_CHECK(split.train.class_names == split.test.class_names, "image folder '", root,
             "': train/ and ", test_dir.filename().string(), "/ have different class folders");
    NL_CHECK(split.train.height == split.test.height && split.train.width == split.test.width, "image folder '",
             root, "': train images are ", split.train.height, "x", split.train.width, " but test images are ",
             split.test.height, "x", split.test.width);
    if (split.train.channels != split.test.channels) {
      // One side has color: reload nothing, just expand the gray side to RGB planes.
      ImageDataset& gray = split.train.channels == 1 ? split.train : split.test;
      std::vector<uint8_t> rgb(gray.n * 3 * gray.height * gray.width);
      const int64_t plane = gray.height * gray.width;
      for (int64_t i = 0; i < gray.n; ++i)
        for (int c = 0; c < 3; ++c) std::memcpy(rgb.data() + (i * 3 + c) * plane, gray.image(i), plane);
      gray.pixels = std::move(rgb);
      gray.channels = 3;
    }
    return split;
  }
  ImageDataset all = load_image_folder(root);
  return holdout_split(all, holdout, seed);
}

}  // namespace nl::data
