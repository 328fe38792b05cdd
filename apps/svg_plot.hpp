// normlab apps: small SVG line charts for reports (no plotting library in Debian's C++
// ecosystem is worth the dependency for this; SVG is text, diffable, and any browser shows it).
//
//   LinePlot p{.title = "Test error vs batch size", .x_label = "batch size", .y_label = "test error (%)",
//              .log2_x = true};
//   p.series.push_back({"bn", {{2, 40.1}, {4, 20.3}}, /*band=*/{{38.0, 43.5}, {19.9, 21.0}}});
//   write_text_file("fig.svg", p.to_svg());
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace nl {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in x order
  std::vector<std::pair<double, double>> band;    // optional (low, high) per point, e.g. min and max over seeds
  bool dashed = false;
};

struct LinePlot {
  std::string title, x_label, y_label;
  bool log2_x = false;     // x ticks at powers of two (batch sizes)
  bool log_y = false;      // log10 y axis (losses)
  bool markers = true;     // dots at the points (off for long learning curves)
  int width = 640, height = 400;
  std::vector<PlotSeries> series;
  std::string to_svg() const;
};

// A grouped horizontal bar chart (e.g. accuracy per BN statistics mode, step time per norm).
struct BarChart {
  std::string title, value_label;
  std::vector<std::string> categories;     // one group per category
  std::vector<std::string> series_labels;  // one bar per series within a group
  std::vector<std::vector<double>> values; // [series][category]
  int width = 640;
  std::string to_svg() const;
};

// Distinct, colour-blind-friendly colours (Okabe-Ito), cycled.
const char* plot_color(size_t index);

}  // namespace nl
