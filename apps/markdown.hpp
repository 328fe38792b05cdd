// normlab apps: the small subset of Markdown that report.md uses, rendered to HTML for
// report.html (one source for both files, so they can never disagree).
//
//   # / ## / ### heading          | a | b |  tables (a |---| row after the first makes it <th>)
//   paragraphs (blank-line separated)          ```fenced code```
//   **strong**, *emphasis*, `code`, [text](url)
//   ![alt](src) alone on a line: a <figure>; an italic paragraph right after it is its caption
//
// Text is HTML-escaped; inside `code` nothing else is interpreted. What is not in the list
// (nested lists, block quotes, reference links, ...) comes out as plain paragraph text.
#pragma once

#include <functional>
#include <string>

namespace nl {

// `image(src, alt)` returns the HTML of a figure's image; report.html uses it to inline the
// SVG files so the page stands alone. Default: <img src alt>.
using MarkdownImage = std::function<std::string(const std::string& src, const std::string& alt)>;

std::string markdown_to_html(const std::string& markdown, const MarkdownImage& image = {});

// Inline markup of one line of text (escaping, strong, emphasis, code, links).
std::string markdown_inline(const std::string& text);

std::string html_escape(const std::string& text);

}  // namespace nl
