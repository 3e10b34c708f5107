"""``nncore demo``: a local page where a learner draws a digit and watches the network answer.

The page (``static/``) sends the raw ink of each stroke; the server (``server``, the standard
library's ThreadingHTTPServer on 127.0.0.1) puts it through MNIST's own preprocessing
(``nncore.preprocess``) and answers with what ``DemoApp`` (``app``) makes of it: the 28x28
image the network received and ``predict_proba``'s float64 probabilities. Without a model
file the demo trains and caches a default one (``default_model``). ``command`` is the
command line's part.
"""
from .app import DemoApp, RequestError
from .default_model import default_model_path, load_default_model
from .server import DemoServer

__all__ = ["DemoApp", "DemoServer", "RequestError", "default_model_path", "load_default_model"]
