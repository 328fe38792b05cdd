// Tests of the Markdown subset behind report.html (apps/markdown.hpp). The renderer lives in
// the normlab program, not in a library, so this test compiles its source directly (as
// llm.c's test includes the C file it checks).
#include <catch2/catch.hpp>

#include "apps/markdown.cpp"

using nl::markdown_inline;
using nl::markdown_to_html;

TEST_CASE("inline markup: strong, emphasis, code, links, escaping", "[markdown]") {
  CHECK(markdown_inline("Headline metric: **test error (%)** (mean)") ==
        "Headline metric: <strong>test error (%)</strong> (mean)");
  CHECK(markdown_inline("*a caption* and *another*") == "<em>a caption</em> and <em>another</em>");
  CHECK(markdown_inline("**BN - GN**") == "<strong>BN - GN</strong>");
  CHECK(markdown_inline("lr = 0.02 * B / 32, a * b") == "lr = 0.02 * B / 32, a * b");  // products stay text
  CHECK(markdown_inline("`runs/<norm>-b<batch>/` and **x**") == "<code>runs/&lt;norm&gt;-b&lt;batch&gt;/</code> and <strong>x</strong>");
  CHECK(markdown_inline("`**not bold**`") == "<code>**not bold**</code>");
  CHECK(markdown_inline("see [the docs](docs/a.md)") == "see <a href=\"docs/a.md\">the docs</a>");
  CHECK(markdown_inline("a < b & c > d") == "a &lt; b &amp; c &gt; d");
  CHECK(markdown_inline("**bold with *emphasis* inside**") == "<strong>bold with <em>emphasis</em> inside</strong>");
  CHECK(markdown_inline("unclosed **strong and *em") == "unclosed **strong and *em");
}

TEST_CASE("blocks: headings, paragraphs, tables with header rows, code, figures with captions", "[markdown]") {
  const std::string md = "# normlab report: x\n\nFirst line\nsecond line.\n\n"
                         "| norm | B=4 | B=16 |\n|---|---|---|\n| bn | 1.0 | **2.0** |\n| **BN - GN** | +1 | -1 |\n\n"
                         "## Section\n\n```\nint a = b < c;\n```\n\n"
                         "![fig.svg](fig.svg)\n\n*The caption with `code`.*\n\n![g.svg](g.svg)\n\nplain text after\n";
  const std::string html = markdown_to_html(md, [](const std::string& src, const std::string& alt) {
    return "[image " + src + "]";
  });
  CHECK(html.find("<h1>normlab report: x</h1>") != std::string::npos);
  CHECK(html.find("<p>First line\nsecond line.</p>") != std::string::npos);
  CHECK(html.find("<table>\n<tr><th>norm</th><th>B=4</th><th>B=16</th></tr>\n"
                  "<tr><td>bn</td><td>1.0</td><td><strong>2.0</strong></td></tr>\n"
                  "<tr><td><strong>BN - GN</strong></td><td>+1</td><td>-1</td></tr>\n</table>") != std::string::npos);
  CHECK(html.find("---") == std::string::npos);  // the delimiter row is not a table row
  CHECK(html.find("<h2>Section</h2>") != std::string::npos);
  CHECK(html.find("<pre><code>int a = b &lt; c;\n</code></pre>") != std::string::npos);
  CHECK(html.find("<figure>[image fig.svg]\n<figcaption>The caption with <code>code</code>.</figcaption>\n</figure>") !=
        std::string::npos);
  // A figure without a caption is closed before the next paragraph.
  CHECK(html.find("<figure>[image g.svg]\n</figure>\n<p>plain text after</p>") != std::string::npos);
  CHECK(html.find("**") == std::string::npos);
  // Without a callback: an <img>.
  CHECK(markdown_to_html("![a \"b\"](x.svg)\n") == "<figure><img src=\"x.svg\" alt=\"a &quot;b&quot;\">\n</figure>\n");
}
