package dev.sdrt.runtime.text;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Expected values are what Python 3.11's html.unescape returns for the same input. */
class HtmlEntitiesTest {

    @Test
    void commonNamedReferences() {
        assertThat(HtmlEntities.unescape("&lt;3")).isEqualTo("<3");
        assertThat(HtmlEntities.unescape("Tom &amp; Jerry")).isEqualTo("Tom & Jerry");
        assertThat(HtmlEntities.unescape("&quot;caf&eacute;&quot;")).isEqualTo("\"café\"");
        assertThat(HtmlEntities.unescape("a&nbsp;b")).isEqualTo("a\u00a0b");
        assertThat(HtmlEntities.unescape("wait&hellip; &mdash; &rsquo;")).isEqualTo("wait… — ’");
    }

    @Test
    void onePassDecodesOneLevel() {
        assertThat(HtmlEntities.unescape("&amp;amp;")).isEqualTo("&amp;");
        assertThat(HtmlEntities.unescape(HtmlEntities.unescape("&amp;amp;"))).isEqualTo("&");
    }

    @Test
    void numericReferences() {
        assertThat(HtmlEntities.unescape("it&#39;s")).isEqualTo("it's");
        assertThat(HtmlEntities.unescape("it&#x27;s")).isEqualTo("it's");
        assertThat(HtmlEntities.unescape("&#X27&#39")).as("';' is optional").isEqualTo("''");
        assertThat(HtmlEntities.unescape("&#x1F600;")).isEqualTo("😀");
        assertThat(HtmlEntities.unescape("&#00000000000000000000065;")).isEqualTo("A");
        assertThat(HtmlEntities.unescape("&#36;&#92;")).as("no regex replacement syntax").isEqualTo("$\\");
    }

    @Test
    void numericReferencesFollowPythonsRulesForInvalidCodePoints() {
        assertThat(HtmlEntities.unescape("&#0;")).isEqualTo("\uFFFD");
        assertThat(HtmlEntities.unescape("&#13;")).isEqualTo("\r");
        assertThat(HtmlEntities.unescape("&#9;")).isEqualTo("\t");
        assertThat(HtmlEntities.unescape("&#128;&#150;&#159;")).as("windows-1252").isEqualTo("€–Ÿ");
        assertThat(HtmlEntities.unescape("&#129;")).as("a hole in windows-1252").isEqualTo("\u0081");
        assertThat(HtmlEntities.unescape("&#xD800;")).as("surrogate").isEqualTo("\uFFFD");
        assertThat(HtmlEntities.unescape("&#x110000;")).isEqualTo("\uFFFD");
        assertThat(HtmlEntities.unescape("&#99999999999999999999;")).isEqualTo("\uFFFD");
        assertThat(HtmlEntities.unescape("a&#1;&#127;&#xFFFE;&#x10FFFF;&#xFDD0;b")).as("dropped").isEqualTo("ab");
    }

    @Test
    void legacyNamesNeedNoSemicolonAndMatchAsPrefixes() {
        assertThat(HtmlEntities.unescape("&amp &AMP")).isEqualTo("& &");
        assertThat(HtmlEntities.unescape("&lt&gt")).isEqualTo("<>");
        assertThat(HtmlEntities.unescape("&ampx")).isEqualTo("&x");
        assertThat(HtmlEntities.unescape("&ltfoo;")).isEqualTo("<foo;");
        assertThat(HtmlEntities.unescape("&notin")).as("only 'not' is legacy").isEqualTo("¬in");
        assertThat(HtmlEntities.unescape("&notin;")).isEqualTo("∉");
    }

    @Test
    void html5NamesAreKnownToo() {
        assertThat(HtmlEntities.unescape("&notinva;")).isEqualTo("∉");
        assertThat(HtmlEntities.unescape("&apos;&check;&NewLine;")).isEqualTo("'✓\n");
        assertThat(HtmlEntities.unescape("&acE;")).as("two code points").isEqualTo("\u223e\u0333");
        assertThat(HtmlEntities.unescape("&Afr;")).as("outside the BMP").isEqualTo("\uD835\uDD04");
    }

    @Test
    void anythingElseStaysAsItIs() {
        for (String text : new String[] {"&bogus;", "& alone", "AT&T", "&Amp;", "&#;", "&#x;", "&", "no references",
                "&" + "a".repeat(40) + ";"}) {
            assertThat(HtmlEntities.unescape(text)).as(text).isEqualTo(text);
        }
    }
}
