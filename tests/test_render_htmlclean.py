"""htmlclean on HTML that did not pass through feedparser (a text/html summary, a lenient parser)."""

from __future__ import annotations

from lxml import html as lxml_html

from digest import excerpts, htmlclean

LINK = "https://blog.example.org/2026/11/20/post/"


def cleaned(fragment: str, title: str = "A post") -> lxml_html.HtmlElement:
    root = htmlclean.parse_fragment(fragment)
    htmlclean.clean_entry_html(root, title=title, link=LINK, base_url="https://blog.example.org/")
    return root


def test_dangerous_markup_is_removed_and_players_become_links() -> None:
    root = cleaned(
        '<base href="https://evil.example/"><meta http-equiv="refresh" content="0">'
        '<p onclick="x()" onmouseover="y()">Hi <a href="javascript:alert(1)">js</a> '
        '<a href=" JAVASCRIPT:alert(1)">js2</a> <a href="vbscript:x">vb</a> <a href="data:text/html,x">data</a></p>'
        '<iframe src="https://video.example/embed/1"></iframe><video><source src="a.mp4"></video>'
        '<form action="/go"><input name="q"><button>Go</button></form><script>x()</script>'
    )
    serialised = htmlclean.serialise_children(root)

    for needle in ("<base", "<meta", "onclick", "onmouseover", "javascript", "vbscript", "data:", "<iframe",
                   "<video", "<source", "<form", "<input", "<button", "<script"):  # fmt: skip
        assert needle not in serialised.lower(), needle
    assert root.text_content().count("view it on the site") == 2
    assert [a.get("href") for a in root.iter("a")] == [LINK, LINK]
    assert "js js2 vb data" in root.text_content()


def test_a_leading_h1_is_the_posts_own_title_and_goes_even_when_worded_differently() -> None:
    root = cleaned("<h1>AI diagnosing ER patients</h1><p>Body.</p>", title="OpenAI's o1 diagnosed 67% of patients")
    assert [child.tag for child in root] == ["p"]


def test_a_leading_h2_goes_only_when_it_repeats_the_title() -> None:
    repeated = cleaned("<h2>A post: the sequel</h2><p>Body.</p>", title="A post")
    different = cleaned("<h2>Background</h2><p>Body.</p>", title="A post")
    later = cleaned("<p>Intro.</p><h1>A post</h1>", title="A post")

    assert [child.tag for child in repeated] == ["p"]
    assert [child.tag for child in different] == ["h2", "p"]
    assert [child.tag for child in later] == ["p", "h1"]


def test_the_heading_inside_a_lone_wrapper_div_is_found_too() -> None:
    root = cleaned('<div class="post"><h1>A post</h1><p>Body.</p></div>')
    assert [child.tag for child in root[0]] == ["p"]


def test_excerpts_cut_between_blocks_and_never_end_on_a_heading() -> None:
    words = " ".join(["word"] * 40)
    root = htmlclean.parse_fragment(
        f"<p>{words}</p><p>{words}</p><h3>Next part</h3><p>{words}</p><pre>code</pre><p>{words}</p>"
    )
    assert excerpts.excerpt(root, 100) is True
    assert [child.tag for child in root] == ["p", "p"]


def test_the_first_block_is_kept_however_long() -> None:
    root = htmlclean.parse_fragment(f"<p>{' '.join(['word'] * 500)}</p><p>more</p>")
    assert excerpts.excerpt(root, 100) is True
    assert [child.tag for child in root] == ["p"] and excerpts.word_count(root) == 500


def test_images_are_absolute_fitted_and_unloadable_ones_dropped() -> None:
    root = cleaned(
        '<p><img src="/a.png" width="2000" height="1000"><img src="data:image/png;base64,AAAA" alt="x">'
        '<img src="b.png" width="300" style="float:left"> tail</p>'
    )
    images = list(root.iter("img"))
    assert [img.get("src") for img in images] == ["https://blog.example.org/a.png", LINK + "b.png"]
    assert (images[0].get("width"), images[0].get("height")) == ("552", "276")
    assert images[1].get("width") == "300" and images[1].get("style", "").startswith("float:left;")
    assert all("max-width:100%" in img.get("style", "") for img in images)
    assert root.text_content().strip() == "tail"
