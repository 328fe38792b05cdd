// normlab apps: Markdown subset to HTML (see markdown.hpp).
#include "apps/markdown.hpp"

#include <sstream>
#include <vector>

namespace nl {

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// "| a | b |" -> {"a", "b"}
std::vector<std::string> table_cells(const std::string& row) {
  std::string inner = trim(row);
  if (starts_with(inner, "|")) inner.erase(0, 1);
  if (!inner.empty() && inner.back() == '|') inner.pop_back();
  std::vector<std::string> cells;
  std::stringstream ss(inner);
  std::string cell;
  while (std::getline(ss, cell, '|')) cells.push_back(trim(cell));
  return cells;
}

bool is_delimiter_row(const std::vector<std::string>& cells) {
  for (const auto& c : cells)
    if (c.empty() || c.find_first_not_of(":-") != std::string::npos || c.find('-') == std::string::npos) return false;
  return !cells.empty();
}

// "![alt](src)" filling the whole line -> (alt, src)
bool parse_image(const std::string& line, std::string& alt, std::string& src) {
  if (!starts_with(line, "![") || line.back() != ')') return false;
  const size_t mid = line.find("](");
  if (mid == std::string::npos) return false;
  alt = line.substr(2, mid - 2);
  src = line.substr(mid + 2, line.size() - mid - 3);
  return true;
}

// A paragraph that is one *emphasis* span and nothing else (a figure caption).
bool is_caption(const std::string& paragraph) {
  return paragraph.size() > 2 && paragraph.front() == '*' && paragraph.back() == '*' && paragraph[1] != '*' &&
         paragraph.find('*', 1) == paragraph.size() - 1;
}

std::string render_table(const std::vector<std::string>& rows) {
  std::string html = "<table>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto cells = table_cells(rows[r]);
    if (r == 1 && is_delimiter_row(cells)) continue;
    const bool header = r == 0 && rows.size() > 1 && is_delimiter_row(table_cells(rows[1]));
    const char* tag = header ? "th" : "td";
    html += "<tr>";
    for (const auto& c : cells) html += std::string("<") + tag + ">" + markdown_inline(c) + "</" + tag + ">";
    html += "</tr>\n";
  }
  return html + "</table>\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string markdown_inline(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '`') {
      const size_t end = text.find('`', i + 1);
      if (end != std::string::npos) {
        out += "<code>" + html_escape(text.substr(i + 1, end - i - 1)) + "</code>";
        i = end + 1;
        continue;
      }
    } else if (c == '*' && i + 1 < text.size() && text[i + 1] == '*') {
      const size_t end = text.find("**", i + 2);
      if (end != std::string::npos && end > i + 2) {
        out += "<strong>" + markdown_inline(text.substr(i + 2, end - i - 2)) + "</strong>";
        i = end + 2;
        continue;
      }
    } else if (c == '*' && i + 1 < text.size() && text[i + 1] != ' ') {
      // *emphasis*: opens before a non-space, closes after one ("a * b" stays a product)
      size_t end = text.find('*', i + 1);
      while (end != std::string::npos && (text[end - 1] == ' ' || (end + 1 < text.size() && text[end + 1] == '*')))
        end = text.find('*', end + 2);
      if (end != std::string::npos) {
        out += "<em>" + markdown_inline(text.substr(i + 1, end - i - 1)) + "</em>";
        i = end + 1;
        continue;
      }
    } else if (c == '[') {
      const size_t mid = text.find("](", i + 1);
      const size_t end = mid == std::string::npos ? mid : text.find(')', mid + 2);
      if (end != std::string::npos) {
        out += "<a href=\"" + html_escape(text.substr(mid + 2, end - mid - 2)) + "\">" +
               markdown_inline(text.substr(i + 1, mid - i - 1)) + "</a>";
        i = end + 1;
        continue;
      }
    }
    out += html_escape(std::string(1, c));
    ++i;
  }
  return out;
}

std::string markdown_to_html(const std::string& markdown, const MarkdownImage& image) {
  const MarkdownImage img = image ? image : [](const std::string& src, const std::string& alt) {
    return "<img src=\"" + html_escape(src) + "\" alt=\"" + html_escape(alt) + "\">";
  };
  std::vector<std::string> lines;
  {
    std::stringstream ss(markdown);
    std::string line;
    while (std::getline(ss, line)) lines.push_back(line);
  }
  std::string html, paragraph;
  bool figure_open = false;  // a figure waits for its caption (the next block, if italic)
  auto close_figure = [&] {
    if (figure_open) html += "</figure>\n";
    figure_open = false;
  };
  auto flush_paragraph = [&] {
    if (paragraph.empty()) return;
    if (figure_open && is_caption(paragraph)) {
      html += "<figcaption>" + markdown_inline(paragraph.substr(1, paragraph.size() - 2)) + "</figcaption>\n";
    } else {
      close_figure();
      html += "<p>" + markdown_inline(paragraph) + "</p>\n";
    }
    close_figure();
    paragraph.clear();
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string line = trim(lines[i]);
    std::string alt, src;
    if (line.empty()) {
      flush_paragraph();
    } else if (starts_with(line, "```")) {
      flush_paragraph();
      close_figure();
      std::string code;
      for (++i; i < lines.size() && !starts_with(trim(lines[i]), "```"); ++i) code += lines[i] + "\n";
      html += "<pre><code>" + html_escape(code) + "</code></pre>\n";
    } else if (line[0] == '#' && line.find_first_not_of('#') <= 6 && line[line.find_first_not_of('#')] == ' ') {
      flush_paragraph();
      close_figure();
      const size_t level = line.find_first_not_of('#');
      const std::string tag = "h" + std::to_string(level);
      html += "<" + tag + ">" + markdown_inline(trim(line.substr(level))) + "</" + tag + ">\n";
    } else if (line[0] == '|') {
      flush_paragraph();
      close_figure();
      std::vector<std::string> rows;
      for (; i < lines.size() && starts_with(trim(lines[i]), "|"); ++i) rows.push_back(lines[i]);
      --i;
      html += render_table(rows);
    } else if (paragraph.empty() && parse_image(line, alt, src)) {
      close_figure();
      html += "<figure>" + img(src, alt) + "\n";
      figure_open = true;
    } else {
      paragraph += (paragraph.empty() ? "" : "\n") + line;
    }
  }
  flush_paragraph();
  close_figure();
  return html;
}

}  // namespace nl
