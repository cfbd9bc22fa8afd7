"""The workflow graph as a picture, by job: ``reading.py`` reads a (possibly invalid)
definition into the nodes and edges that can be drawn, ``layout.py`` places them
(the automatic layered layout, and whether stored positions are used) and ``svg.py``
draws the result as inline SVG. Import from those modules; nothing is re-exported here.
"""
