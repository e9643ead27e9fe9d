#!/usr/bin/env bash
# Offline copies of the browser assets the built book needs, so that math and widgets render
# without a network:
#
#   MathJax 3                      -> <dest>/html/vendor/mathjax/       (sphinx: mathjax_path)
#   require.js                     -> <dest>/html/vendor/require.js     (myst-nb: nb_ipywidgets_js)
#   @jupyter-widgets/html-manager  -> <dest>/html/vendor/html-manager/  (myst-nb: nb_ipywidgets_js)
#
# _config.yml serves <dest>/html through `html_extra_path`, so these land at
# _build/html/vendor/... and every page links to them by a page-relative URL.
#
#   tools/vendor.sh _vendor          (what `make vendor` runs)
#
# Versions come from tools/package.json and are pinned by tools/package-lock.json (npm ci).
# Needs node and npm, and the npm registry once; the built book needs neither.
set -euo pipefail

dest=${1:?usage: tools/vendor.sh DEST (e.g. _vendor)}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

command -v npm >/dev/null || {
    echo "vendor.sh: npm is needed (Debian: apt-get install -y npm)" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
# --ignore-scripts: nothing here needs an install script (font-awesome's only prints a notice).
npm ci --no-audit --no-fund --ignore-scripts --prefix "$work" >&2
modules="$work/node_modules"

out="$dest/html/vendor"
rm -rf "$out"
mkdir -p "$out/mathjax" "$out/html-manager"

# MathJax loads fonts and TeX extensions lazily from beside its own script: copy the es5 tree.
cp -r "$modules/mathjax/es5/." "$out/mathjax/"
cp "$modules/mathjax/LICENSE" "$out/mathjax/"

cp "$modules/requirejs/require.js" "$out/require.js"

# embed-amd.js bundles the core widget models (base, controls, output) and loads its
# font-awesome files from its own folder.
hm="$modules/@jupyter-widgets/html-manager/dist"
cp "$hm/embed-amd.js" "$out/html-manager/"
find "$hm" -maxdepth 1 -type f \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' \
    -o -name '*.eot' -o -name '*.svg' \) -exec cp {} "$out/html-manager/" \;
cp "$modules/@jupyter-widgets/html-manager/LICENSE" "$out/html-manager/" 2>/dev/null || true

for f in mathjax/tex-chtml.js require.js html-manager/embed-amd.js; do
    test -s "$out/$f" || {
        echo "vendor.sh: $out/$f is missing or empty" >&2
        exit 1
    }
done
echo "vendor.sh: $(du -sh "$out" | cut -f1) of offline assets in $out" >&2
