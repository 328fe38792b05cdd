// normlab apps: SVG charts. See svg_plot.hpp.
#include "apps/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace nl {

const char* plot_color(size_t index) {
  static const char* colors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                 "#56B4E9", "#000000", "#F0E442", "#999999"};
  return colors[index % (sizeof(colors) / sizeof(colors[0]))];
}

static std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// The <svg> element on a white background, with the chart's title centred at title_x.
static std::string svg_open(int width, int height, const std::string& title, double title_x) {
  return fmt::format(
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
             width, height, width, height) +
         fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
                     title_x, escape(title));
}

// "Nice" tick step for a range: 1, 2 or 5 times a power of ten.
static double nice_step(double range, int target_ticks) {
  const double raw = range / std::max(target_ticks, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude) return m * magnitude;
  return 10.0 * magnitude;
}

static std::string format_tick(double v) {
  if (v == 0) return "0";
  if (std::abs(v) >= 1e4 || std::abs(v) < 1e-3) return fmt::format("{:.0e}", v);
  return fmt::format("{:g}", v);
}

std::string LinePlot::to_svg() const {
  // The right margin holds the legend: wide enough for the longest label (~7 px a character).
  size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.label.size());
  const double left = 70, right = std::max(150.0, 52.0 + 7.0 * static_cast<double>(longest)), top = 40, bottom = 55;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  auto tx = [&](double x) { return log2_x ? std::log2(x) : x; };
  auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
  for (const auto& s : series) {
    for (size_t i = 0; i < s.points.size(); ++i) {
      auto [x, y] = s.points[i];
      if (!std::isfinite(y) || (log_y && y <= 0) || (log2_x && x <= 0)) continue;
      x_min = std::min(x_min, tx(x));
      x_max = std::max(x_max, tx(x));
      y_min = std::min(y_min, ty(y));
      y_max = std::max(y_max, ty(y));
      if (i < s.band.size() && std::isfinite(s.band[i].first) && std::isfinite(s.band[i].second) &&
          (!log_y || s.band[i].first > 0)) {
        y_min = std::min(y_min, ty(s.band[i].first));
        y_max = std::max(y_max, ty(s.band[i].second));
      }
    }
  }
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  if (x_max == x_min) x_max = x_min + 1;
  if (y_max == y_min) y_max = y_min + 1;
  const double y_pad = 0.05 * (y_max - y_min);
  y_min -= y_pad;
  y_max += y_pad;
  auto px = [&](double x) { return left + (tx(x) - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return top + (1.0 - (ty(y) - y_min) / (y_max - y_min)) * plot_h; };

  std::string svg = svg_open(width, height, title, left + plot_w / 2);
  // grid and ticks
  if (log2_x) {
    for (int e = static_cast<int>(std::ceil(x_min)); e <= static_cast<int>(std::floor(x_max)); ++e) {
      const double x = std::pow(2.0, e), p = px(x);
      svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#ddd\"/>\n"
                         "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                         p, top, top + plot_h, top + plot_h + 16, format_tick(x));
    }
  } else {
    const double step = nice_step(x_max - x_min, 6);
    for (double x = std::ceil(x_min / step) * step; x <= x_max + 1e-9 * step; x += step)
      svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#ddd\"/>\n"
                         "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                         px(x), top, top + plot_h, top + plot_h + 16, format_tick(x));
  }
  if (log_y && y_max - y_min < 1.0) {
    // Less than a decade: 1-2-5 ticks would leave one label; use nice linear steps instead,
    // placed on the log axis.
    const double lo = std::pow(10.0, y_min), hi = std::pow(10.0, y_max);
    const double step = nice_step(hi - lo, 8);
    for (double y = std::ceil(lo / step) * step; y <= hi + 1e-9 * step; y += step)
      svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/>\n"
                         "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                         left, py(y), left + plot_w, left - 6, py(y) + 4, format_tick(y));
  } else if (log_y) {
    for (int e = static_cast<int>(std::floor(y_min)); e <= static_cast<int>(std::ceil(y_max)); ++e) {
      for (double m : {1.0, 2.0, 5.0}) {
        const double y = m * std::pow(10.0, e);
        if (std::log10(y) < y_min || std::log10(y) > y_max) continue;
        svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/>\n"
                           "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                           left, py(y), left + plot_w, left - 6, py(y) + 4, format_tick(y));
      }
    }
  } else {
    const double step = nice_step(y_max - y_min, 6);
    for (double y = std::ceil(y_min / step) * step; y <= y_max + 1e-9 * step; y += step)
      svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/>\n"
                         "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                         left, py(y), left + plot_w, left - 6, py(y) + 4, format_tick(y));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, top,
                     plot_w, plot_h);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + plot_w / 2, height - 12,
                     escape(x_label));
  svg += fmt::format("<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     top + plot_h / 2, escape(y_label));
  // series: spread band, line, markers, legend entry
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* color = plot_color(k);
    std::vector<std::pair<double, double>> pts, band;
    for (size_t i = 0; i < s.points.size(); ++i) {
      auto [x, y] = s.points[i];
      if (!std::isfinite(y) || (log_y && y <= 0) || (log2_x && x <= 0)) continue;
      pts.push_back(s.points[i]);
      const bool has_band = i < s.band.size() && std::isfinite(s.band[i].first) && std::isfinite(s.band[i].second) &&
                            (!log_y || s.band[i].first > 0);
      band.push_back(has_band ? s.band[i] : std::pair{y, y});
    }
    if (!s.band.empty() && !pts.empty()) {
      // the band as one polygon: along the highs, back along the lows; error bars mark each point
      // where points are marked (sparse series: on a learning curve of hundreds they would be stripes)
      std::string outline;
      for (size_t i = 0; i < pts.size(); ++i) outline += fmt::format("{:.1f},{:.1f} ", px(pts[i].first), py(band[i].second));
      for (size_t i = pts.size(); i-- > 0;) outline += fmt::format("{:.1f},{:.1f} ", px(pts[i].first), py(band[i].first));
      svg += fmt::format("<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.15\" stroke=\"none\"/>\n", outline, color);
      for (size_t i = 0; markers && i < pts.size(); ++i)
        if (band[i].first < band[i].second)
          svg += fmt::format("<line class=\"band\" x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\"/>\n",
                             px(pts[i].first), py(band[i].first), py(band[i].second), color);
    }
    std::string line;
    for (auto [x, y] : pts) line += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", line, color,
                       s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    if (markers)
      for (auto [x, y] : pts) svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", px(x), py(y), color);
    const double ly = top + 10 + 18.0 * k;
    svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"{}/>\n"
                       "<text x=\"{}\" y=\"{}\">{}</text>\n",
                       left + plot_w + 12, ly, left + plot_w + 36, ly, color, s.dashed ? " stroke-dasharray=\"6 4\"" : "",
                       left + plot_w + 42, ly + 4, escape(s.label));
  }
  return svg + "</svg>\n";
}

std::string BarChart::to_svg() const {
  size_t longest = 0;
  for (const auto& l : series_labels) longest = std::max(longest, l.size());
  const double left = 130, right = std::max(150.0, 42.0 + 7.0 * static_cast<double>(longest)), top = 40, bar_h = 14,
               group_gap = 12;
  const double group_h = bar_h * std::max<size_t>(series_labels.size(), 1) + group_gap;
  const int height = static_cast<int>(top + group_h * categories.size() + 50);
  const double plot_w = width - left - right;
  double v_max = 0;
  for (const auto& s : values)
    for (double v : s)
      if (std::isfinite(v)) v_max = std::max(v_max, v);
  if (v_max <= 0) v_max = 1;
  const double step = nice_step(v_max, 5);
  v_max = std::ceil(v_max / step) * step;
  std::string svg = svg_open(width, height, title, left + plot_w / 2);
  const double bottom = top + group_h * categories.size();
  for (double v = 0; v <= v_max + 1e-9; v += step) {
    const double x = left + v / v_max * plot_w;
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#ddd\"/>\n"
                       "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                       x, top, bottom, bottom + 16, format_tick(v));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + plot_w / 2, bottom + 36,
                     escape(value_label));
  for (size_t c = 0; c < categories.size(); ++c) {
    const double gy = top + group_h * c;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", left - 6,
                       gy + group_h / 2 - group_gap / 2 + 4, escape(categories[c]));
    for (size_t s = 0; s < values.size(); ++s) {
      const double v = c < values[s].size() ? values[s][c] : NAN;
      if (!std::isfinite(v)) continue;
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"/>\n"
                         "<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\">{}</text>\n",
                         left, gy + bar_h * s, v / v_max * plot_w, bar_h - 2, plot_color(s),
                         left + v / v_max * plot_w + 3, gy + bar_h * s + bar_h - 4, fmt::format("{:.3g}", v));
    }
  }
  for (size_t s = 0; s < series_labels.size(); ++s) {
    const double ly = top + 10 + 18.0 * s;
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" fill=\"{}\"/>\n<text x=\"{}\" y=\"{}\">{}</text>\n",
                       left + plot_w + 12, ly - 8, plot_color(s), left + plot_w + 32, ly + 1, escape(series_labels[s]));
  }
  return svg + "</svg>\n";
}

}  // namespace nl
