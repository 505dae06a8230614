"""Sketch and reference measurement: imaging, strokes, Visual Analyst, Reference Compare, Line Quality Analyzer."""
