from typing import Any, Awaitable, Callable, Dict, Optional, Tuple, TypeVar, Union
import configparser

from .core import Client, Packet
from .filters import Filter

_H = TypeVar("_H", bound=Callable[[Client, Packet], Awaitable[Any]])
_T = TypeVar("_T")

ENGINE_OPTIONS: Tuple[str, ...]
BACKENDS: Tuple[str, ...]

class Server:
    addr: str
    port: int
    buf: int
    logging_level: Union[int, str]
    console_format: str
    datefmt: str
    timeout: Union[int, float]
    header_size: int
    byteorder: str
    config: Optional[str]
    session_limit: int
    backend: str
    encoding: str
    engine_options: Dict[str, Any]
    bound_address: Optional[Tuple[str, int]]
    def __init__(
        self,
        addr: str = ...,
        port: int = ...,
        buf: int = ...,
        logging_level: Union[int, str] = ...,
        console_format: str = ...,
        datefmt: str = ...,
        timeout: Union[int, float] = ...,
        header_size: int = ...,
        byteorder: str = ...,
        config: Optional[str] = ...,
        cfg_parser: Optional[configparser.ConfigParser] = ...,
        session_limit: int = ...,
        *,
        backend: str = ...,
        **engine_options: Any,
    ) -> None: ...
    def load_config(self) -> None: ...
    def register_handler(self, handler: _H, *filters: Filter, group: int = ...) -> _H: ...
    def add_handler(self, *filters: Filter, group: int = ...) -> Callable[[_H], _H]: ...
    def setup(self) -> Optional[Awaitable[None]]: ...
    def shutdown(self) -> Optional[Awaitable[None]]: ...
    async def run_sync_task(self, sync_fn: Callable[..., _T], *args: Any, cancellable: bool = ..., limiter: Any = ...) -> _T: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
