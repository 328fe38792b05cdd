// normlab data: a folder of image files, one sub-folder per class.
//
// Layout:  root/<class_name>/<anything>.png|.jpg|.jpeg   (extension case-insensitive)
// Class names are the sub-folder names, sorted, so label k is the k-th name in byte order
// (the same convention as torchvision's ImageFolder). Files with other extensions and
// hidden entries (".foo") are skipped. Images are decoded with stb_image.
//
// Every image must have the same width and height (there is no resizing: the point is to
// see the data the network sees). Channels: if every image is grayscale the dataset has
// C = 1; if any image has color, all are loaded as RGB (C = 3; gray images are replicated
// into three planes). An alpha channel is dropped.
#pragma once

#include <string>

#include "data/dataset.hpp"

namespace nl::data {

// All images under root/<class>/. Throws nl::Error naming the file for unreadable images,
// size mismatches, and for a root without class folders or a class folder without images.
ImageDataset load_image_folder(const std::string& root, const std::string& name = "");

// root/train/<class>/ and root/test/<class>/ (or root/val/) when those exist; otherwise
// root/<class>/ with a seeded `holdout` fraction held out as the test set. The train and
// test class lists must agree.
DatasetSplit load_image_folder_split(const std::string& root, double holdout = 0.1, uint64_t seed = 0);

}  // namespace nl::data
