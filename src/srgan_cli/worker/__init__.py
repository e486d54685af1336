"""A warm background worker, so one-file-per-call use (Makefiles, ``find -exec``, ``xargs -P``)
pays for the image and not for starting TensorFlow and building the model every time.

``paths`` says where the per-user socket lives, ``protocol`` how frames cross it,
``held`` which calls the loaded model can serve, ``server`` is the worker process, ``call``
one call inside it with the client's streams, and ``client`` is what ``srgan upscale`` runs
first: it forwards the call (argv, working
directory, stdin on demand) and replays what comes back (stderr, stdout, exit code). The
worker runs the very same ``srgan upscale`` command with its model injected, so a call does
the same either way. ``paths``, ``protocol`` and ``client`` use the standard library only.
"""
