"""Integrations with other frameworks; each module imports its framework, the package imports nothing.

- :mod:`cachekit.contrib.django`: a Django cache backend over a cachekit region
  (``pip install 'cachekit-config[django]'``).
"""
