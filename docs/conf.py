"""Sphinx configuration: the guide pages (Markdown, with the measured tables) and the API documentation
built from the package's docstrings."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "torch-geometric-lieconv"
author = "The torch-geometric-lieconv authors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "sphinx.ext.viewcode", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the docstrings state the types, PyG style
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build", "figures"]
html_theme = "alabaster"
