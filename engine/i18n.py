"""Dashboard labels in English and Simplified Chinese."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

LANGUAGES = {"en": "English", "zh": "中文"}

TEXT: dict[str, tuple[str, str]] = {
    # navigation
    "nav_home": ("Home", "首页"),
    "nav_scenarios": ("Scenarios", "测试场景"),
    "nav_run": ("Run", "运行测试"),
    "nav_compare": ("Compare", "对比结果"),
    # home
    "home_intro": ("ModelPick runs open LLMs side by side on your scenarios and measures load time, "
                   "first-token latency, throughput, memory and answer quality. Everything is stored "
                   "in DuckDB so the decision is repeatable and can be exported.",
                   "ModelPick 在你的业务场景上并排运行开源大模型，实测加载时间、首字延迟、吞吐、显存和回答质量。"
                   "所有结果存入 DuckDB，决策可重复、可导出。"),
    "home_empty": ("No runs yet. Start with the standard five-question set on the two bundled models "
                   "(measured on a 2-core CPU: about 35 s, the first time as after).",
                   "还没有测试记录。先用内置的两个模型跑一遍标准五题（2 核 CPU 实测：约 35 秒，首次与之后相同）。"),
    "home_quickstart": ("Run the standard scenario on {models}", "在 {models} 上运行标准场景"),
    "home_running": ("Run {run_id} is in progress.", "测试 {run_id} 正在进行。"),
    "home_watch": ("Watch progress", "查看进度"),
    "home_latest_runs": ("Latest runs", "最近的测试"),
    # run page
    "run_active": ("Run {run_id}", "测试 {run_id}"),
    "run_starting": ("Starting the worker…", "正在启动测试进程…"),
    "run_progress": ("{done} / {total} generations · {elapsed} elapsed · about {remaining} left",
                     "已完成 {done} / {total} 次生成 · 已用 {elapsed} · 预计还需 {remaining}"),
    "run_progress_first": ("{done} / {total} generations · {elapsed} elapsed · time left follows the first answer",
                           "已完成 {done} / {total} 次生成 · 已用 {elapsed} · 首个回答完成后估算剩余时间"),
    "run_progress_final": ("{done} / {total} generations in {elapsed}", "完成 {done} / {total} 次生成，用时 {elapsed}"),
    # a duration in progress texts
    "dur_s": ("{s} s", "{s} 秒"),
    "dur_min": ("{m} min {s} s", "{m} 分 {s} 秒"),
    "dur_h": ("{h} h {m} min", "{h} 小时 {m} 分"),
    "run_generating": ("Generating: {model} · {case}", "正在生成：{model} · {case}"),
    "run_cancel": ("Cancel", "取消"),
    "run_cancelling": ("Cancelling after the current answer…", "将在当前回答后停止…"),
    "run_done": ("Finished: {done} generations.", "完成：共 {done} 次生成。"),
    "run_interrupted": ("Cancelled after {done} of {total} generations; what was measured is kept.",
                        "已取消：完成 {done} / {total} 次生成，已测数据全部保留。"),
    "run_engine_died": ("{model}: its llama.cpp engine process died of {signal} ({why}). {failed} of {total} "
                        "generations are recorded as failed; the other models ran as usual.",
                        "{model}：llama.cpp 引擎进程因 {signal} 终止（{why}）。{total} 次生成中 {failed} 次记为失败；"
                        "其他模型照常运行。"),
    "signal_SIGILL": ("illegal instruction: this llama.cpp build uses an instruction the CPU cannot run; run "
                      "`make install` again to rebuild and check it for this CPU",
                      "非法指令：此 llama.cpp 构建使用了本机 CPU 不支持的指令；请重新运行 `make install`，按本机 CPU 重新构建并检查"),
    "signal_SIGSEGV": ("segmentation fault: often a malformed or truncated GGUF file",
                       "段错误：常见原因是 GGUF 文件损坏或不完整"),
    "signal_SIGBUS": ("bus error: the GGUF file is truncated or changed while in use",
                      "总线错误：GGUF 文件不完整或在使用中被修改"),
    "signal_SIGABRT": ("llama.cpp aborted on a failed assertion", "llama.cpp 因断言失败而中止"),
    "signal_SIGKILL": ("killed, often by the out-of-memory killer: the model may not fit in RAM",
                       "被强制结束，常见原因是内存不足：模型可能放不进内存"),
    "run_model_failed": ("{model}: {failed} of {total} generations failed. The most common reason:",
                         "{model}：{total} 次生成中有 {failed} 次失败。最常见的原因："),
    "run_failed": ("The run failed: {error}", "测试失败：{error}"),
    "run_resume": ("Resume: run the missing and cancelled cases", "继续：补跑缺失和已取消的用例"),
    "run_open_compare": ("Open the comparison", "查看对比"),
    "run_new": ("New run", "新建测试"),
    "run_bundled_models": ("Bundled models (run here, in process)", "内置模型（本机进程内运行）"),
    "run_catalog": ("Catalog models and how to serve them", "模型目录与部署方式"),
    "run_catalog_help": ("Large models run on a GPU host: serve them with Ollama or vLLM and add them "
                         "below, or give a local GGUF file.",
                         "大模型需在 GPU 主机上运行：用 Ollama 或 vLLM 部署后在下方添加，或填写本地 GGUF 文件。"),
    "run_gguf_path": ("GGUF file to run with llama.cpp", "用 llama.cpp 运行的 GGUF 文件"),
    "run_servers": ("Models on servers (Ollama, OpenAI-compatible)", "服务器上的模型（Ollama、OpenAI 兼容接口）"),
    "run_ollama_host": ("Ollama host", "Ollama 地址"),
    "run_presets": ("Presets for the use case", "常用部署预设"),
    "run_preset_serve": ("Start the server with:", "先用以下命令启动服务："),
    "run_ollama_list": ("List the host's installed models", "列出该主机已安装的模型"),
    "run_ollama_installed": ("Installed on the Ollama host", "Ollama 主机上已安装的模型"),
    "cmp_sweeps": ("Load sweeps", "并发压测"),
    "cloud_title": ("Rent a GPU for this session (SkyPilot)", "为本次测试租用 GPU（SkyPilot）"),
    "cloud_help": ("The models run on the rented box itself, so timings are not measured across the internet; "
                   "the task stops itself after the run and after 10 idle minutes, and is cut at the hours given. "
                   "Fetch the results with: python -m engine cloud fetch CLUSTER.",
                   "模型在租用的机器上运行，计时不经过公网；任务在运行结束并空闲 10 分钟后自动关机，并在设定时长处截止。"
                   "用 python -m engine cloud fetch 集群名 取回结果。"),
    "cloud_scenarios": ("Scenarios", "场景"),
    "cloud_hours": ("Hours", "时长（小时）"),
    "cloud_budget": ("Budget (e.g. 10USD, 70CNY)", "预算（如 10USD、70CNY）"),
    "cloud_spot": ("Spot instances", "竞价实例"),
    "cloud_download": ("Task file {name}.yaml", "任务文件 {name}.yaml"),
    "cloud_launch": ("Launch with SkyPilot", "用 SkyPilot 启动"),
    "cloud_launch_log": ("SkyPilot's progress", "SkyPilot 进度"),
    "sweep_title": ("Load sweep: one served model at rising concurrency", "并发压测：同一服务化模型逐级提高并发"),
    "sweep_help": ("Sends this scenario's prompts to a model behind an HTTP server (vLLM, llama-server, Ollama) "
                   "with 1, 2, 4, … requests in flight, and measures throughput, TTFT and inter-token latency "
                   "percentiles and goodput (requests within every SLO) per level. Cost per request uses it.",
                   "将本场景的提示并发发送到 HTTP 服务上的模型（vLLM、llama-server、Ollama），同时在途请求数逐级为 1、2、4……，"
                   "逐级测量吞吐、首字延迟与 token 间隔的分位数，以及有效吞吐（满足全部 SLO 的请求）。每请求成本会用到它。"),
    "sweep_model": ("Served model", "服务化模型"),
    "sweep_model_help": ("openai/<model>@http://host:port/v1 or ollama/<tag>[@http://host:11434]",
                         "openai/<模型>@http://主机:端口/v1 或 ollama/<标签>[@http://主机:11434]"),
    "sweep_max_tokens": ("Max tokens per request", "每个请求的最大生成长度"),
    "sweep_levels": ("Concurrency levels", "并发级别"),
    "sweep_rates": ("Arrival rates per second", "每秒到达速率"),
    "sweep_rates_help": ("Open-loop levels: requests arrive at these rates (Poisson, seeded) whatever is in flight, "
                         "as a chat feature's traffic does; a level whose queue keeps growing is marked saturated "
                         "and ends early. Empty: concurrency levels only.",
                         "开环级别：请求按这些速率到达（泊松分布，固定种子），不论有多少请求正在处理，与聊天功能的真实流量相同；"
                         "队列持续增长的级别标记为饱和并提前结束。留空：只测并发级别。"),
    "sweep_warmup": ("Warm-up requests", "预热请求数"),
    "sweep_warmup_help": ("Untimed requests sent before each level.", "每个级别开始前发送、不计时的请求。"),
    "sweep_find_max": ("Search for the highest level meeting the SLOs", "搜索满足 SLO 的最高负载"),
    "sweep_find_max_help": ("From the first rate (or, without rates, the first concurrency level): doubling while "
                            "levels meet the SLOs, halving while they miss, then bisecting between the two. A level "
                            "meets them when 95% of its requests do. The cost table then takes the level found as "
                            "the model's capacity.",
                            "从第一个速率（没有速率时从第一个并发级别）开始：满足 SLO 时加倍，不满足时减半，然后在两者之间二分。"
                            "一个级别有 95% 的请求满足 SLO 即算满足。成本表随后以找到的级别作为该模型的容量。"),
    "sweep_requests": ("Requests per level (0 = 4 × concurrency, at least 8)", "每级请求数（0 表示并发数 × 4，至少 8）"),
    "sweep_requests_help": ("More requests give steadier percentiles.", "请求越多，分位数越稳定。"),
    "sweep_slo_ttft": ("SLO: TTFT (ms, 0 = none)", "SLO：首字延迟（毫秒，0 表示不限）"),
    "sweep_slo_e2e": ("SLO: response time (ms, 0 = none)", "SLO：响应时间（毫秒，0 表示不限）"),
    "sweep_slo_itl": ("SLO: mean inter-token gap (ms, 0 = none)", "SLO：平均 token 间隔（毫秒，0 表示不限）"),
    "sweep_start": ("Start sweep", "开始压测"),
    "sweep_active": ("Sweep {id}", "压测 {id}"),
    "sweep_progress": ("{done} / {total} requests · concurrency {level} · {elapsed} elapsed · "
                       "about {remaining} left",
                       "已完成 {done} / {total} 个请求 · 并发 {level} · 已用 {elapsed} · 预计还需 {remaining}"),
    "sweep_progress_first": ("{done} / {total} requests · concurrency {level} · {elapsed} elapsed",
                             "已完成 {done} / {total} 个请求 · 并发 {level} · 已用 {elapsed}"),
    "sweep_progress_final": ("{done} / {total} requests in {elapsed}", "完成 {done} / {total} 个请求，用时 {elapsed}"),
    "sweep_cancelling": ("Stopping: no new request is sent.", "正在停止：不再发送新请求。"),
    "sweep_done": ("Sweep finished.", "压测完成。"),
    "sweep_interrupted": ("Sweep cancelled; the finished levels are kept.", "压测已取消；已完成的级别保留。"),
    "chart_sweep_goodput": ("Requests/s and goodput by concurrency", "不同并发下的请求/秒与有效吞吐"),
    "chart_sweep_itl": ("Inter-token latency by concurrency (ms)", "不同并发下的 token 间隔（毫秒）"),
    "chart_sweep_ttft_pct": ("TTFT percentiles by concurrency (ms)", "不同并发下的首字延迟分位数（毫秒）"),
    "percentile": ("Percentile", "分位数"),
    "cmp_sweep": ("Sweep", "压测"),
    "chart_sweep_throughput": ("Output tokens/s by concurrency", "不同并发下的输出 token/秒"),
    "concurrency": ("Concurrency", "并发数"),
    "output_tok_per_s": ("Output tokens/s (all requests)", "总输出 token/秒"),
    "ttft_ms_p95": ("TTFT p95 (ms)", "首字延迟 P95（毫秒）"),
    "run_ollama_models": ("Ollama models (comma-separated tags)", "Ollama 模型（逗号分隔）"),
    "run_openai_url": ("OpenAI-compatible base URL", "OpenAI 兼容接口地址"),
    "run_openai_models": ("Models at that URL (comma-separated)", "该地址上的模型（逗号分隔）"),
    "run_extra_specs": ("More model specs, one per line (backend/model)", "其他模型（每行一个 backend/model）"),
    "run_repeats": ("Repeats", "重复次数"),
    "run_max_context": ("Context cap (tokens)", "上下文上限（token）"),
    "run_max_context_help": ("Each model runs in its own context length (its GGUF file's, its server's) up to this "
                             "cap; long-context probes are sized to the context each model gets.",
                             "每个模型按其自身的上下文长度运行（来自 GGUF 文件或服务端），不超过此上限；长上下文探针按每个模型实际获得的上下文设定长度。"),
    "run_cache": ("Prompt cache", "提示缓存"),
    "cache_cold": ("cold (default)", "冷（默认）"),
    "cache_warm": ("warm", "热"),
    "run_cache_help": ("Cold: a unique marker starts every prompt, so no server's prompt cache can serve it and "
                       "TTFT is the model's. Warm: each request is sent once untimed first, as a deployment with "
                       "prefix caching would see it.",
                       "冷：每个提示开头加唯一标记，服务器的提示缓存无法命中，首字延迟反映模型本身。热：每个请求先不计时地发送一次，"
                       "模拟启用前缀缓存的生产部署。"),
    "cache_mode": ("Prompt cache", "提示缓存"),
    "cache_marker": ("Cache marker", "缓存标记"),
    "cached_prompt_tokens": ("Prompt tokens from cache", "命中缓存的提示 token"),
    "ttft_ms_cold": ("TTFT cold (ms)", "冷启动首字延迟（毫秒）"),
    "ttft_ms_warm": ("TTFT warm (ms)", "缓存命中首字延迟（毫秒）"),
    "warm_over_cold": ("Warm / cold", "热 / 冷"),
    "rep_cache_used": ("The ranking uses the {mode} runs.", "排名依据{mode}运行的结果。"),
    "cmp_cold_warm": ("Time to first token, cold and warm (median, ms)", "首字延迟：冷与热（中位数，毫秒）"),
    "run_judge": ("Judge model for rubric checks (optional)", "评分裁判模型（可选，用于评分标准检查）"),
    "run_judge_help": ("Any model spec. Without a judge, llm_judge checks are skipped, not failed.",
                       "任意模型。未设置裁判时，llm_judge 检查会被跳过，不计为失败。"),
    "run_max_tokens": ("Max tokens", "最大生成长度"),
    "run_temperature": ("Temperature", "温度"),
    "run_gpu_layers": ("GPU layers", "GPU 层数"),
    "run_gpu_layers_help": ("llama.cpp layers on the GPU: 0 = CPU only, -1 = all.",
                            "放到 GPU 上的 llama.cpp 层数：0 为仅 CPU，-1 为全部。"),
    "run_cases": ("Cases", "测试用例"),
    "run_plan": ("{models} models × {cases} cases × {repeats} repeats",
                 "{models} 个模型 × {cases} 个用例 × {repeats} 次"),
    "run_start": ("Start", "开始测试"),
    "run_started": ("Run started", "开始时间"),
    # scenarios page
    "scen_none": ("No scenarios in scenarios/ yet: create one below.", "scenarios/ 中还没有场景：请在下方创建。"),
    "scen_weights": ("Default weights", "默认权重"),
    "scen_defaults": ("Generation defaults", "生成参数默认值"),
    "scen_cases": ("{n} cases", "{n} 个用例"),
    "scen_turn": ("Turn {n}", "第 {n} 轮"),
    "scen_create": ("Create a custom scenario", "创建自定义场景"),
    "scen_tab_sheet": ("Import a sheet of questions", "导入问题表格"),
    "scen_sheet_help": ("CSV, JSONL or Excel, one row per question: a prompt column and, as you have them, "
                        "reference, category, lang, contains, exact, number, regex, rubric (see the README).",
                        "CSV、JSONL 或 Excel，每行一个问题：prompt 列必填，可选 reference、category、lang、contains、"
                        "exact、number、regex、rubric 等列（见 README）。"),
    "scen_sheet_upload": ("Questions file (.csv, .jsonl, .xlsx)", "问题文件（.csv、.jsonl、.xlsx）"),
    "scen_preview": ("Preview: scenario '{id}' with {n} cases (not saved yet)", "预览：场景「{id}」，共 {n} 个用例（尚未保存）"),
    "checks": ("Checks", "检查项"),
    "scen_docs_upload": ("Documents the questions are about (optional: PDF, Word, Markdown, text)",
                         "问题所依据的文档（可选：PDF、Word、Markdown、文本）"),
    "scen_docs_help": ("Their text becomes every case's context (a row's context_file names one of them).",
                       "文档文字将作为每个用例的上下文（某行的 context_file 可指定其中一个）。"),
    "scen_docs_count": ("With {n} documents as context.", "附带 {n} 份文档作为上下文。"),
    "scen_power": ("How fine a difference these cases can tell apart", "这些用例能分辨多小的差异"),
    "scen_power_help": ("Per category: the smallest difference in mean quality (0-1) between two models that "
                        "this many cases detect (paired, 5% level, 80% power). The spread of case differences "
                        "comes from the latest runs of two models on this scenario, or before any run from an "
                        "assumed 0.4. More cases, smaller differences.",
                        "按类别：以当前用例数能检测出的两个模型平均质量（0-1）的最小差异（配对比较，5% 显著性，80% 检验力）。"
                        "用例差值的离散度取自本场景上两个模型的最近测试；尚未测试时假定为 0.4。用例越多，能分辨的差异越小。"),
    "spread_sd": ("Spread of case differences (sd)", "用例差值离散度（标准差）"),
    "spread_source": ("Spread from", "离散度来源"),
    "spread_basis": ("Models · cases", "模型 · 用例数"),
    "min_detectable_difference": ("Smallest detectable difference", "可检测的最小差异"),
    "assumed": ("assumed", "假定值"),
    "observed": ("observed", "实测"),
    "all": ("all cases", "全部用例"),
    "lang": ("Language", "语言"),
    "scen_tab_yaml": ("Upload or paste YAML", "上传或粘贴 YAML"),
    "scen_tab_form": ("Fill in a form", "填写表单"),
    "scen_upload": ("Scenario file (.yaml)", "场景文件（.yaml）"),
    "scen_paste": ("…or paste the YAML here", "……或在此粘贴 YAML"),
    "scen_validate_save": ("Validate and save", "校验并保存"),
    "scen_pasted_source": ("pasted YAML", "粘贴的 YAML"),
    "scen_form_source": ("form", "表单"),
    "scen_invalid": ("Not saved. {error}", "未保存。{error}"),
    "scen_saved": ("Saved scenario '{id}' with {n} cases. It is now in the Run page.",
                   "已保存场景「{id}」，共 {n} 个用例，可在“运行测试”页选择。"),
    "scen_id": ("Id (lowercase letters, digits, - and _)", "ID（小写字母、数字、- 和 _）"),
    "scen_name": ("Name", "名称"),
    "scen_description": ("Purpose", "用途说明"),
    # compare page
    "cmp_empty": ("No runs yet: start one on the Run page.", "还没有测试记录：请先在“运行测试”页开始一次测试。"),
    "cmp_go_run": ("Go to Run", "去运行测试"),
    "cmp_source": ("Compare", "对比范围"),
    "cmp_source_run": ("one run", "单次测试"),
    "cmp_source_scenario": ("latest run of each model for a scenario", "某场景下每个模型的最近一次测试"),
    "cmp_run": ("Run", "测试"),
    "cmp_no_generations": ("This run has no results yet.", "这次测试还没有结果。"),
    "cmp_failed_generations": ("{n} of {total} generations failed; they count as failed checks.",
                               "{total} 次生成中有 {n} 次失败，计为未通过。"),
    "cmp_metrics": ("Metrics", "指标对比"),
    "cmp_download_metrics": ("Metrics (CSV)", "指标表（CSV）"),
    "cmp_download_generations": ("All generations (CSV)", "全部生成记录（CSV）"),
    "cmp_download_checks": ("Check results (CSV)", "检查结果（CSV）"),
    "cmp_charts": ("Distributions", "分布图"),
    "cmp_answers": ("Answers side by side", "回答并排对比"),
    "cmp_generation_failed": ("Generation failed", "生成失败"),
    "cmp_sweep_saturated": ("At c={c} the output rate fell below c={lower}'s: the host was saturated (the client "
                            "and the server share its cores), so the curve from there is this machine's limit, not "
                            "the server's scaling; sweep from a client on another machine to measure the server.",
                            "在 c={c} 时输出速率低于 c={lower}：主机已饱和（客户端与服务器共用 CPU 核心），从这里开始的曲线"
                            "反映的是这台机器的极限，而不是服务器的扩展能力；请从另一台机器上的客户端压测服务器。"),
    "cmp_run_starting": ("starting (no answer yet)", "正在开始（尚无回答）"),
    "cmp_tools": ("Tools", "工具调用"),
    "cmp_tools_help": ("Per model, on the cases with tools: the calls it made, calls whose arguments could not be "
                       "read, model steps per answer, time in the sandboxed tools (median ms), and pass^k: the "
                       "chance that k tries of a case all succeed (every check passed), averaged over cases.",
                       "每个模型在带工具的用例上：发出的调用数、参数无法解析的调用数、每个回答的模型步数、在沙箱工具中花费的时间"
                       "（中位数，毫秒），以及 k 次全对率：同一用例 k 次尝试全部成功的概率（所有检查通过），按用例平均。"),
    "cmp_tools_silent": ("No answer of {model} carried a tool call on its {n} tool cases: its server or chat "
                         "template may not pass tools (llama-server answers in prose when the template carries none), "
                         "so its tool scores say nothing about what the model can do.",
                         "{model} 在 {n} 个工具用例上的回答都没有发出任何工具调用：它的服务器或对话模板可能没有传递工具"
                         "（模板不含工具时 llama-server 只会用文字回答），因此它的工具得分不能说明模型本身的能力。"),
    "cmp_step": ("Step {n}", "第 {n} 步"),
    "cmp_call": ("calls {name}", "调用 {name}"),
    "cmp_result": ("result", "结果"),
    "cmp_tool_time": ("{ms} ms in tools", "工具用时 {ms} 毫秒"),
    "cmp_answer_timing": ("first token {ttft} ms · total {e2e} ms", "首字 {ttft} 毫秒 · 总计 {e2e} 毫秒"),
    "metric": ("Metric", "指标"),
    "better": ("Better", "更优方向"),
    "better_lower": ("lower", "越低越好"),
    "better_higher": ("higher", "越高越好"),
    "winner": ("Winner", "胜出"),
    "tie": ("tie", "持平"),
    "check": ("Check", "检查项"),
    "criterion": ("Criterion", "评估维度"),
    "weight": ("Weight", "权重"),
    "value": ("Value", "取值"),
    "passed": ("Passed", "通过"),
    "score": ("Score", "得分"),
    "detail": ("Detail", "说明"),
    "model": ("Model", "模型"),
    "scenario": ("Scenario", "场景"),
    "category": ("Category", "类别"),
    "pass_rate_cat": ("Check pass rate: {category}", "检查通过率：{category}"),
    # quality and ratings
    "cmp_quality": ("Quality by category (95% confidence)", "各类别质量得分（95% 置信区间）"),
    "cmp_human": ("Human ratings", "人工评分"),
    "cmp_judge_pairs": ("Pairwise judge (both orders averaged)", "裁判模型两两对比（正反两种顺序取平均）"),
    "cmp_human_ab": ("Blind A/B (Bradley-Terry rating, 95% CI)", "盲测 A/B（Bradley-Terry 评分，95% 置信区间）"),
    "cmp_human_stars": ("Stars given by raters", "评审打出的星级"),
    "cmp_no_human": ("No human ratings yet: rate answers on the Rate page.", "还没有人工评分：请到“人工评分”页打分。"),
    "chart_quality": ("Check score (0-1)", "检查得分（0-1）"),
    "chinese_fluency": ("Chinese fluency", "中文流畅度"),
    "english": ("English", "英文表达"),
    "extraction": ("extraction", "信息抽取"),
    "refusal": ("refusal when unknown", "不知道时拒答"),
    "format": ("output format", "输出格式"),
    "long_context": ("long context", "长上下文"),
    "honesty": ("no invented facts", "不编造"),
    "escalation": ("escalation", "转人工"),
    "sql": ("SQL", "SQL"),
    "explanation": ("explanation", "代码解释"),
    "testing": ("unit tests", "单元测试"),
    "multi_fact": ("several facts combined", "多事实组合"),
    "whole_document": ("needs the whole document", "需通读全文"),
    "bugfix": ("fixing a bug", "修复缺陷"),
    "library": ("library calls", "库函数调用"),
    "imported": ("imported", "导入"),
    "row": ("Row", "维度"),
    "stars": ("Stars", "星级"),
    "ci_low": ("95% low", "95% 下限"),
    "ci_high": ("95% high", "95% 上限"),
    "n": ("n", "样本数"),
    "rating": ("Rating", "评分"),
    "votes": ("Votes", "票数"),
    # rate page
    "nav_rate": ("Rate", "人工评分"),
    "rate_intro": ("Judge answers yourself. In the blind test the model names stay hidden until you vote.",
                   "亲自评判回答。盲测中，投票前不显示模型名称。"),
    "rate_rater": ("Your name", "你的名字"),
    "rate_need_stars": ("Choose the stars first.", "请先选择星级。"),
    "rate_all_voted": ("You have voted on every pair of this scenario's latest runs.",
                       "您已对该场景最新测试的每一组答案投过票。"),
    "rate_instructions": ("Instructions the answer must follow", "回答须遵循的指示"),
    "rate_documents": ("Documents given with the question: {names}", "随问题提供的文档：{names}"),
    "rate_earlier_turn": ("Turn {n}, the user said:", "第 {n} 轮，用户说："),
    "rate_earlier_answers": ("Its earlier answers in this conversation", "它在本次对话中的先前回答"),
    "rate_need_name": ("Enter your name first: ratings are stored with the rater.", "请先填写名字：评分会记录评审人。"),
    "rate_blind": ("Blind A/B", "盲测 A/B"),
    "rate_no_pair": ("No case has answers from two models yet: run two models on this scenario first.",
                     "还没有两个模型回答同一用例：请先在此场景上运行两个模型。"),
    "rate_left": ("Answer A", "回答 A"),
    "rate_right": ("Answer B", "回答 B"),
    "vote_left": ("A is better", "A 更好"),
    "vote_right": ("B is better", "B 更好"),
    "vote_tie": ("Tie", "差不多"),
    "vote_both_bad": ("Both bad", "都不好"),
    "rate_revealed": ("A was {left}, B was {right}. Vote saved.", "A 是 {left}，B 是 {right}。已保存投票。"),
    "rate_next": ("Next pair", "下一组"),
    "rate_stars": ("Stars per answer", "逐条打星"),
    "rate_question": ("Question", "问题"),
    "rate_answer": ("Answer", "回答"),
    "rate_dimension": ("Dimension", "维度"),
    "rate_save_stars": ("Save stars", "保存星级"),
    "rate_saved_stars": ("Saved.", "已保存。"),
    "overall": ("overall", "总体"),
    "accuracy": ("accuracy", "准确性"),
    "fluency": ("fluency", "流畅度"),
    "tone": ("tone", "语气"),
    # metrics
    "load_s": ("Load time (s)", "启动（加载）时间（秒）"),
    "ttft_ms_p50": ("Time to first token, median (ms)", "首字延迟中位数（毫秒）"),
    "e2e_ms_mean": ("Average response time (ms)", "平均响应时间（毫秒）"),
    "e2e_ms_p50": ("Response time, median (ms)", "响应时间中位数（毫秒）"),
    "e2e_ms_p95": ("Response time p95 (ms)", "响应时间 P95（毫秒）"),
    "decode_tok_per_s": ("Decode speed (tokens/s)", "生成速度（token/秒）"),
    "decode_tok_per_s_p50": ("Decode speed, median (tokens/s)", "生成速度中位数（token/秒）"),
    "chars_per_s": ("Output speed (characters/s)", "输出速度（字符/秒）"),
    "memory_mb": ("Memory (MB)", "内存/显存占用（MB）"),
    "ok_rate": ("Generations without error", "生成成功率"),
    # charts
    "chart_ttft": ("Time to first token (ms)", "首字延迟（毫秒）"),
    "chart_latency": ("Response time (ms)", "响应时间（毫秒）"),
    "chart_decode": ("Decode speed (tokens/s)", "生成速度（token/秒）"),
    "chart_history": ("Across runs", "历次测试变化"),
    "cmp_history_latest": ("The latest {n} of {total} runs.", "显示最近 {n} 次测试（共 {total} 次）。"),
    # categories
    "knowledge": ("knowledge", "基础知识"),
    "coding": ("coding", "代码能力"),
    "instruction_following": ("instruction following", "指令遵循"),
    "multi_turn": ("multi-turn memory", "多轮对话"),
    "chinese_writing": ("Chinese writing", "中文表达"),
    # criteria
    "ttft": ("first token", "首字延迟"),
    "latency": ("latency", "响应时间"),
    "throughput": ("throughput", "吞吐"),
    "memory": ("memory", "显存"),
    "cost": ("cost", "成本"),
    # run statuses and run table columns
    "running": ("running", "进行中"),
    "done": ("done", "已完成"),
    "interrupted": ("interrupted", "已中断"),
    "failed": ("failed", "失败"),
    "run_id": ("Run", "测试编号"),
    "scenario_id": ("Scenario", "场景"),
    "status": ("Status", "状态"),
    "started_at": ("Started (UTC)", "开始时间（UTC）"),
    "finished_at": ("Finished (UTC)", "结束时间（UTC）"),
    "planned_generations": ("Planned", "计划生成数"),
    "generations_done": ("Done", "已完成生成数"),
    "models": ("Models", "模型"),
    # recommendation and report
    "nav_recommend": ("Recommend", "选型建议"),
    "ttft_ms": ("Time to first token (ms)", "首字延迟（毫秒）"),
    "e2e_ms": ("Average response time (ms)", "平均响应时间（毫秒）"),
    "crit_quality": ("Quality", "回答质量"),
    "crit_ttft": ("Time to first token", "首字延迟"),
    "crit_latency": ("Response time", "响应时间"),
    "crit_throughput": ("Throughput", "吞吐"),
    "crit_load": ("Load time", "加载时间"),
    "crit_memory": ("Memory", "显存/内存"),
    "crit_cost": ("Cost", "成本"),
    "crit_context": ("Context length", "上下文长度"),
    "crit_ecosystem": ("Ecosystem", "生态"),
    "crit_preference": ("Human preference", "人工偏好"),
    "crit_consistency": ("Consistency (pass^k)", "一致性（k 次全部成功的概率）"),
    "rep_votes": ("Human preference: {n} blind A/B votes on {cases} cases by {raters}.",
                  "人工偏好：{raters} 在 {cases} 个用例上投出 {n} 张盲评票。"),
    "rep_stars": ("Stars ({dimension}): {model} {stars} over {cases} cases by {raters} raters.",
                  "星级（{dimension}）：{model} {stars}，{cases} 个用例，{raters} 位评分人。"),
    "rep_stars_not_weighted": ("Not weighted: stars are shown beside the verdict and do not enter the score; "
                               "preference (the blind votes) has weight 0 here.",
                               "未计入：星级只在结论旁展示，不计入得分；本次人工偏好（盲评投票）的权重为 0。"),
    "rep_votes_not_weighted": ("Not weighted: preference has weight 0 in this decision, so the votes did not "
                               "count toward the verdict.",
                               "未计入：本次决策中人工偏好的权重为 0，这些投票没有计入结论。"),
    "rep_votes_none": ("Human preference: no blind A/B votes between these models yet (Rate page).",
                       "人工偏好：这些模型之间尚无盲评投票（评分页面）。"),
    "rec_too_close": ("Too close to call: no model ranks first often enough under these weights.",
                      "难分高下：在当前权重下没有模型足够稳定地排名第一。"),
    "rec_no_eligible": ("No model meets the constraints.", "没有模型满足约束条件。"),
    "rec_too_close_leader": ("Ahead for now: {model}, first in {p} of resamples (a verdict needs {need}).",
                             "暂时领先：{model}，在 {p} 的重抽样中排第一（给出结论需要 {need}）。"),
    "rec_verdict_winner": ("Recommended: {model} (ranks first in {p} of resamples; score margin {margin}).",
                           "推荐：{model}（重抽样中 {p} 排名第一；得分领先 {margin}）。"),
    "rec_ranking": ("Ranking", "排名"),
    "rec_score": ("Score", "得分"),
    "rec_p_first": ("P(first)", "排名第一概率"),
    "rec_excluded_why": ("Excluded because", "排除原因"),
    "rec_criterion": ("Criterion", "指标"),
    "rec_weight": ("Weight", "权重"),
    "rec_weight_share": ("Weight share", "权重占比"),
    "rec_weights": ("Weights", "权重"),
    "rec_weights_help": ("Defaults come from the scenario; they are normalised to 100%.",
                         "默认值来自场景文件，会归一化为 100%。"),
    "rec_constraints": ("Constraints", "约束条件"),
    "rec_max_vram": ("GPU memory budget (GB, 0 = none)", "显存预算（GB，0 表示不限）"),
    "rec_ttft_sla": ("TTFT p95 SLA (ms, 0 = none)", "首字延迟 P95 上限（毫秒，0 表示不限）"),
    "rec_e2e_sla": ("Response time p95 SLA (ms, 0 = none)", "响应时间 P95 上限（毫秒，0 表示不限）"),
    "rec_licences": ("Allowed licences (none selected = any)", "允许的许可证（不选表示不限）"),
    "rec_min_quality": ("Minimum quality (0-1)", "最低质量分（0-1）"),
    "rec_gpu": ("GPU for cost", "计算成本所用 GPU"),
    "rec_gpu_cheapest": ("Cheapest that fits each model", "每个模型选能放下的最便宜 GPU"),
    "rec_currency": ("Currency", "币种"),
    "rec_traffic": ("Traffic", "业务流量"),
    "rec_requests_per_day": ("Requests per day", "每日请求数"),
    "rec_peak_concurrency": ("Peak concurrency", "峰值并发"),
    "rec_hours_online": ("Hours online per day", "每日在线小时数"),
    "rec_session_hours": ("Test session hours", "测试时长（小时）"),
    "rec_contributions": ("Score by criterion", "各指标得分构成"),
    "rec_sensitivity": ("What would change the winner", "什么会改变结论"),
    "rec_sensitivity_help": ("For each weight: the share at which another model would lead (others keep their "
                             "proportions).", "对每个权重：调到多少时会换成另一个模型领先（其余权重按比例缩放）。"),
    "rec_flip_low": ("Flips below", "低于此值翻转"),
    "rec_flip_high": ("Flips above", "高于此值翻转"),
    "rec_winner_below": ("Leader below", "低于时领先"),
    "rec_winner_above": ("Leader above", "高于时领先"),
    "rec_no_flip": ("No weight changes the leader.", "任何单一权重变化都不会改变领先者。"),
    "rec_trust_timings": ("Trust these timings", "采用这些计时"),
    "rec_trust_timings_help": ("When a run shared its machine with other work, or the models were timed on different "
                               "machines, the timing criteria are left out of the verdict. Tick to weigh them anyway; "
                               "the summary then says so at the top.",
                               "若测试运行时机器上有其他任务，或各模型在不同机器上计时，计时类指标不计入结论。"
                               "勾选后仍计入这些计时，摘要顶部会注明。"),
    "rate_per_s": ("Arrival rate (requests/s)", "到达速率（请求/秒）"),
    "saturated": ("Saturated", "已饱和"),
    "arrival_seed": ("Arrival seed", "到达时间种子"),
    "server_json": ("Server's own count", "服务端自身计数"),
    "cmp_server_counters": ("The servers' own counters", "服务端自身计数"),
    "cmp_server_ttft": ("{model}: client TTFT p50 {ours} ms, server TTFT p50 {theirs} ms: the network and the client "
                        "add {added} ms",
                        "{model}：客户端首字延迟中位数 {ours} 毫秒，服务端中位数 {theirs} 毫秒：网络与客户端增加 {added} 毫秒"),
    "server_ttft_ms_p50": ("Server TTFT p50 (ms)", "服务端首字延迟中位数（毫秒）"),
    "added_ms": ("Network and client add (ms)", "网络与客户端增加（毫秒）"),
    "server_error": ("Server counters", "服务端计数"),
    "cmp_engine_beside": ("The engine's own figures beside ours", "引擎自报数据与本工具实测对照"),
    "cmp_engine_beside_help": ("Where the engine reports its own times (llama.cpp in process; llama-server's timings): "
                               "our time to first token beside its prompt time, and our streamed decode rate beside "
                               "its own, with their ratio.",
                               "引擎自报时间时（进程内 llama.cpp；llama-server 的 timings）：本工具测得的首字延迟与引擎的"
                               "提示处理时间对照，流式生成速度与引擎自报速度对照，并给出二者之比。"),
    "engine_decode_tok_per_s": ("Engine's decode speed (tokens/s)", "引擎自报生成速度（token/秒）"),
    "decode_ratio": ("Ours / engine's decode speed", "实测/自报生成速度之比"),
    "cmp_retrieval": ("Documents retrieved, not pasted", "文档按检索提供"),
    "cmp_retrieval_help": ("Where a case's documents did not fit the smallest context of the run's models, it was "
                           "given the passages BM25 ranked best; of the cases that name their source, how many were "
                           "given it.",
                           "当用例的文档超出本次测试中最小的模型上下文时，只提供 BM25 排名最靠前的段落；"
                           "在注明出处的用例中，有多少得到了该出处。"),
    "retrieved_cases": ("Cases given passages", "按段落提供的用例"),
    "cases_with_source": ("Cases naming a source", "注明出处的用例"),
    "source_given": ("Source given", "提供了出处"),
    "recall": ("Recall", "召回率"),
    "cav_retrieval": ("the documents did not fit the context for {n} cases ({cases}): they were given the passages "
                      "retrieval chose, the same for every model",
                      "{n} 个用例（{cases}）的文档超出上下文：改为提供检索选出的段落，每个模型相同"),
    "cav_retrieval_recall": ("retrieval gave the answer's source in {given} of {total} cases that name it; a wrong "
                             "answer on the others was never shown the answer",
                             "在注明出处的 {total} 个用例中，检索在 {given} 个中提供了出处；其余用例的答案模型从未见到"),
    "cmp_judge_agreement": ("The judge against your raters", "裁判模型与评审者对照"),
    "cmp_judge_agreement_help": ("Where a judge's pairwise verdicts and your raters' blind A/B votes cover the same case "
                                 "and pair: the share agreeing (first, tie or second) and Cohen's kappa (0 is chance), "
                                 "with 95% intervals from a bootstrap over cases.",
                                 "同一用例与同一对模型既有裁判的成对判定又有评审者的盲评投票时：一致的比例（前者胜、平局、后者胜）"
                                 "与 Cohen's kappa（0 即随机水平），95% 区间由按用例重抽样得出。"),
    "agree_share": ("Agreement", "一致比例"),
    "agree_ci": ("Agreement 95% interval", "一致比例 95% 区间"),
    "kappa": ("Cohen's kappa", "Cohen's kappa"),
    "kappa_ci": ("Kappa 95% interval", "kappa 95% 区间"),
    "items": ("Verdicts compared", "对照的判定数"),
    "reading": ("Reading", "解读"),
    "scen_promptfoo_help": ("A promptfoo suite: its promptfooconfig.yaml and the files it names (prompts, tests.csv), "
                            "side by side. One case per prompt and test; assertions become checks where the meaning "
                            "is the same, and the others are listed.",
                            "promptfoo 测试套件：promptfooconfig.yaml 及其引用的文件（提示词、tests.csv），放在同一层。"
                            "每个提示词与测试组合成一个用例；含义相同的断言转为检查项，其余的会列出。"),
    "scen_promptfoo_upload": ("promptfoo suite files", "promptfoo 套件文件"),
    "scen_promptfoo_unmapped": ("no ModelPick check for {what}", "没有对应的 ModelPick 检查项：{what}"),
    "scen_promptfoo_providers": ("Its providers as ModelPick models:", "其 providers 对应的 ModelPick 模型："),
    "rec_keep_judge": ("Keep the judge's scores", "保留裁判模型的评分"),
    "rec_keep_judge_help": ("A judge whose verdicts agree with your raters' blind votes no better than chance has its "
                            "scores left out of the verdict. Tick to keep them.",
                            "若裁判模型的判定与你的评审者盲评投票的一致性不比随机更好，其评分不计入结论。勾选后仍保留。"),
    "rec_more_cases": ("More cases needed", "还需更多用例"),
    "rec_cost_table": ("Cost", "成本"),
    "rec_memory_need": ("GPU memory need (GB)", "显存需求（GB）"),
    "rec_price": ("Price per hour", "每小时价格"),
    "rec_capacity_source": ("Capacity from", "容量来源"),
    "rec_cost_1k": ("Cost per 1,000 requests", "每千次请求成本"),
    "rec_cost_mtok": ("Cost per million output tokens", "每百万输出 token 成本"),
    "rec_monthly": ("Monthly cost", "每月成本"),
    "rec_session": ("Test session cost", "测试成本"),
    "rec_notes": ("Notes", "说明"),
    "rec_prices": ("GPU prices", "GPU 价格"),
    "rec_prices_help": ("Shipped prices with their source and date; a price you save here is kept in the "
                        "database and takes precedence.", "内置价格附来源与日期；在此保存的价格存入数据库并优先使用。"),
    "rec_save_price": ("Save price", "保存价格"),
    "rec_price_saved": ("Price saved.", "价格已保存。"),
    "rec_provider": ("Provider", "供应商"),
    "rec_tier": ("Tier", "类型"),
    "rec_decision_table": ("Decision table", "决策表"),
    "rec_categories": ("Quality by category", "分类别质量"),
    "rec_caveats": ("Caveats", "注意事项"),
    "rec_download": ("Download the decision summary", "下载决策报告"),
    "rec_save": ("Save this decision", "保存此决策"),
    "rec_save_name": ("Name", "名称"),
    "rec_saved": ("Saved as {id}.", "已保存：{id}。"),
    "rec_saved_list": ("Saved decisions", "已保存的决策"),
    "rec_no_runs": ("No runs yet: run a scenario first.", "还没有测试记录：请先运行一个场景。"),
    "rec_normalisation": ("Normalisation", "归一化方法"),
    "rec_normalisation_text": ("per criterion the best eligible model scores 1; higher-is-better values are divided "
                               "by the best, lower-is-better values invert (best / value); the score is the "
                               "weighted sum", "每项指标中最好的合格模型记 1 分；越高越好的指标除以最佳值，越低越好的指标取"
                               "（最佳值 / 本值）；总分为加权和"),
    "constraint_max_vram_gb": ("GPU memory budget", "显存预算"),
    "constraint_ttft_p95_ms": ("TTFT p95 limit", "首字延迟 P95 上限"),
    "constraint_e2e_p95_ms": ("response time p95 limit", "响应时间 P95 上限"),
    "constraint_licences": ("allowed licences", "允许的许可证"),
    "constraint_min_quality": ("minimum quality", "最低质量分"),
    "constraint_gpu": ("the GPU chosen for cost", "计算成本所选的 GPU"),
    "rec_binding": ("Binding constraint: {c} (without it {m} would lead).", "起决定作用的约束：{c}（若去掉则 {m} 领先）。"),
    "rec_excluded": ("Excluded", "已排除"),
    "cmp_metrics_help": ("Timings (TTFT, latency, decode rate) are medians over cases, scores are means over "
                         "cases, each with a 95% interval (cases resampled, repeats and turns of a case "
                         "together); a winner is named only where the interval of the difference excludes "
                         "zero, else \"tie\". Load time and memory are measured once per run.",
                         "时延类指标（首字延迟、端到端延迟、解码速度）为各用例的中位数，得分为各用例的均值，均附 95% "
                         "置信区间（按用例重抽样，同一用例的重复与多轮一起抽样）；仅当差值区间不含零时才判定胜者，"
                         "否则为“平局”。加载时间与内存每次测试只测一次。"),
    "quality": ("Quality (mean case score)", "质量（用例平均得分）"),
    "rec_too_close_short": ("Too close to call", "难分高下"),
    "rec_no_eligible_short": ("No model eligible", "无合格模型"),
    "rec_fits": ("Fits", "显存够用"),
    "rec_memory_detail": ("Memory need, how", "显存需求构成"),
    "rec_price_source": ("Price source (seen on)", "价格来源（日期）"),
    "rec_capacity_req": ("Capacity (requests/s)", "容量（请求/秒）"),
    "rec_capacity_tok": ("Capacity (output tokens/s)", "容量（输出 token/秒）"),
    "rec_capacity_conc": ("At concurrency", "对应并发"),
    "rec_replicas": ("GPUs needed", "所需 GPU 数"),
    "rec_restore": ("Restore its weights and constraints", "恢复其权重与约束"),
    # table columns (raw names from the engine and the database)
    "model_spec": ("Model", "模型"),
    "dimension": ("Dimension", "维度"),
    "stars_mean": ("Stars (mean)", "平均星级"),
    "stars_shown": ("Stars (95% interval)", "星级（95% 区间）"),
    "ratings": ("Ratings", "评分数"),
    "raters": ("Raters", "评审人数"),
    "judge_spec": ("Judge", "裁判模型"),
    "model_1": ("Model 1", "模型 1"),
    "model_2": ("Model 2", "模型 2"),
    "model_1_win_share": ("Model 1 win share", "模型 1 胜率"),
    "cases": ("Cases", "用例数"),
    "requests": ("Requests", "请求数"),
    "ok_requests": ("Successful requests", "成功请求数"),
    "errors": ("Errors", "错误数"),
    "wall_s": ("Wall time (s)", "总耗时（秒）"),
    "req_per_s": ("Requests/s", "请求/秒"),
    "goodput_req_per_s": ("Goodput (requests/s within SLOs)", "有效吞吐（满足 SLO 的请求/秒）"),
    "ttft_ms_p99": ("TTFT p99 (ms)", "首字延迟 P99（毫秒）"),
    "itl_ms_p50": ("Inter-token latency p50 (ms)", "token 间隔 P50（毫秒）"),
    "itl_ms_p95": ("Inter-token latency p95 (ms)", "token 间隔 P95（毫秒）"),
    "itl_ms_p99": ("Inter-token latency p99 (ms)", "token 间隔 P99（毫秒）"),
    "name": ("Name", "名称"),
    "params_total_b": ("Parameters (B)", "参数量（十亿）"),
    "params_active_b": ("Active parameters (B)", "激活参数（十亿）"),
    "context_tokens": ("Context (tokens)", "上下文长度（token）"),
    "license": ("Licence", "许可证"),
    "quantization": ("Quantisation", "量化方式"),
    "weights_gb": ("Weights (GB)", "权重大小（GB）"),
    "min_gpu_memory_gb": ("Minimum GPU memory (GB)", "最低显存（GB）"),
    "run_here": ("Run here as", "本机运行方式"),
    "ollama": ("Ollama", "Ollama"),
    "vllm": ("vLLM", "vLLM"),
    "gguf": ("GGUF file", "GGUF 文件"),
    "max_tokens": ("Max tokens", "最大生成长度"),
    "temperature": ("Temperature", "温度"),
    "seed": ("Seed", "随机种子"),
    "gpu": ("GPU", "GPU"),
    "memory_gb": ("Memory (GB)", "显存（GB）"),
    "bandwidth_gb_per_s": ("Bandwidth (GB/s)", "带宽（GB/秒）"),
    "provider": ("Provider", "供应商"),
    "tier": ("Tier", "类型"),
    "price_per_hour": ("Price per hour", "每小时价格"),
    "currency": ("Currency", "币种"),
    "source": ("Source", "来源"),
    "seen_on": ("Seen on", "查看日期"),
    "edited": ("Edited here", "本地修改"),
    "leader": ("Leader", "领先者"),
    "flip_low": ("Flips below", "低于此值翻转"),
    "flip_high": ("Flips above", "高于此值翻转"),
    "winner_below": ("Leader below", "低于时领先"),
    "winner_above": ("Leader above", "高于时领先"),
    "distance": ("Distance from today", "与当前权重的距离"),
    "decision_id": ("Decision", "决策编号"),
    "created_at": ("Saved (UTC)", "保存时间（UTC）"),
    "verdict": ("Verdict", "结论"),
    "weights_json": ("Weights", "权重"),
    "constraints_json": ("Constraints", "约束条件"),
    "cost_json": ("Cost inputs", "成本参数"),
    "case_id": ("Case", "用例"),
    "turn": ("Turn", "轮次"),
    "repeat": ("Repeat", "重复序号"),
    "check_type": ("Check", "检查项"),
    "id": ("Id", "编号"),
    "prompt": ("Prompt", "提示词"),
    "must_contain": ("Must contain (comma-separated)", "必须包含（逗号分隔）"),
    "max_chars": ("At most N characters", "最多 N 个字符"),
    "starting": ("starting", "启动中"),
    "choose_options": ("Choose options", "请选择"),
    "choose_option": ("Choose an option", "请选择一项"),
    "uploader_drop": ("Drag and drop a file here", "将文件拖放到此处"),
    "uploader_button": ("Upload", "上传"),
    "uploader_limit": ("{mb} MB per file", "每个文件不超过 {mb} MB"),
    "exceeds_context_msg": ("Exceeds the model's context: not counted as a wrong answer.",
                        "超出模型上下文长度：不计为答错。"),
    "scen_document": ("Document {name} · {chars:,} characters", "文档 {name} · {chars:,} 个字符"),
    "scen_probe": ("Long-context probe: the fact \"{fact}\" hidden at {depth} depth of {size} of filler text.",
                   "长上下文探针：事实“{fact}”藏在 {size} 填充文本的 {depth} 深度处。"),
    "scen_probe_tokens": ("about {n:,} tokens", "约 {n:,} 个 token"),
    "scen_probe_fraction": ("{pct} of each model's context", "每个模型上下文长度的 {pct}"),
    # generation and check columns (CSV downloads)
    "ok": ("OK", "成功"),
    "error": ("Error", "错误"),
    "output_text": ("Answer", "回答"),
    "reasoning_text": ("Reasoning", "推理过程"),
    "finish_reason": ("Finish reason", "结束原因"),
    "load_ms": ("Load (ms)", "加载（毫秒）"),
    "engine_load_ms": ("Engine load (ms)", "引擎加载（毫秒）"),
    "first_token_ms": ("First token after start (ms)", "开始后首个 token（毫秒）"),
    "prompt_tokens": ("Prompt tokens", "提示 token 数"),
    "output_tokens": ("Output tokens", "输出 token 数"),
    "output_chars": ("Output characters", "输出字符数"),
    "prompt_tok_per_s": ("Prompt speed (tokens/s)", "提示处理速度（token/秒）"),
    "stream_decode_tok_per_s": ("Streamed decode speed (tokens/s)", "流式生成速度（token/秒）"),
    "engine_prompt_ms": ("Engine prompt time (ms)", "引擎提示处理时间（毫秒）"),
    "engine_decode_ms": ("Engine decode time (ms)", "引擎生成时间（毫秒）"),
    "engine_total_ms": ("Engine total time (ms)", "引擎总时间（毫秒）"),
    "tokens_source": ("Token counts from", "token 计数来源"),
    "rss_mb": ("Process memory (MB)", "进程内存（MB）"),
    "vram_mb": ("GPU memory (MB)", "显存（MB）"),
    "chunk_gaps_ms": ("Gaps between chunks (ms)", "分块间隔（毫秒）"),
    "exceeds_context": ("Exceeds context", "超出上下文"),
    "raw_verdict": ("Judge's raw verdict", "裁判原始结论"),
    "peak_rss_mb": ("Peak process memory (MB)", "进程内存峰值（MB）"),
    "peak_ram_used_mb": ("Peak machine RAM used (MB)", "整机内存占用峰值（MB）"),
    "mean_cpu_pct": ("Mean CPU use (%)", "平均 CPU 占用（%）"),
    "peak_vram_mb": ("Peak GPU memory (MB)", "显存峰值（MB）"),
    "mean_gpu_util_pct": ("Mean GPU utilisation (%)", "平均 GPU 利用率（%）"),
    "mean_gpu_power_w": ("Mean GPU power (W)", "平均 GPU 功耗（W）"),
    "telemetry_samples": ("Telemetry samples", "采样次数"),
    "cmp_memory_two_figures": ("Two memory figures, two moments: Memory (MB) in the table above is the model's "
                               "footprint once loaded, measured once per run (what the memory criterion, the GPU "
                               "fit and the cost use); Peak process memory is the most the engine process held "
                               "while generating (the model plus its context cache and working buffers), so it is "
                               "higher.",
                               "两个内存数字对应两个时刻：上表的“内存/显存占用（MB）”是模型加载后的占用，每次测试测量一次"
                               "（内存指标、GPU 适配与成本均用它）；“进程内存峰值”是推理进程在生成期间的最高占用"
                               "（模型加上上下文缓存与工作缓冲区），因此更高。"),
    "cmp_resources": ("Resources during generation (median per generation)", "生成期间的资源占用（逐次生成的中位数）"),
    "cmp_no_gpu": ("No GPU figures: the machine that ran these had no NVIDIA GPU that NVML could read.",
                   "没有 GPU 数据：运行这些测试的机器上没有 NVML 可读取的 NVIDIA GPU。"),
    "cmp_no_process_memory": ("No process memory for {models}: a server on another machine holds the model.",
                              "{models} 没有进程内存数据：模型由另一台机器上的服务器持有。"),
    "kind": ("Kind", "类型"),
    "scalar": ("Measured once", "单次测量"),
    "stars_low": ("Stars 95% low", "星级 95% 下限"),
    # check types
    "contains": ("contains", "包含"),
    "contains_any": ("contains any of", "包含其一"),
    "not_contains": ("does not contain", "不包含"),
    "equals": ("equals", "完全一致"),
    "starts_with": ("starts with", "开头为"),
    "is_json": ("is JSON", "是 JSON"),
    "tool_calls": ("tool calls", "工具调用"),
    "final_state": ("final state", "最终状态"),
    "valid_tool_calls": ("valid tool calls", "有效的工具调用"),
    "tool_call_f1": ("tool-call F1", "工具调用 F1"),
    "levenshtein": ("edit distance", "编辑距离"),
    "regex": ("matches a pattern", "匹配正则"),
    "max_sentences": ("at most N sentences", "最多 N 句"),
    "max_chars_per_sentence": ("at most N characters per sentence", "每句最多 N 字"),
    "min_chars": ("at least N characters", "至少 N 字"),
    "language": ("in the right language", "语言正确"),
    "json_schema": ("valid JSON (schema)", "JSON 格式（符合 schema）"),
    "python_tests": ("passes Python tests", "通过 Python 测试"),
    "python_testgen": ("writes tests that catch a bug", "编写的测试能发现缺陷"),
    "sql_result": ("SQL returns the expected rows", "SQL 结果正确"),
    "python_output": ("states what the code prints", "说出代码的输出"),
    "llm_judge": ("judge model rubric", "裁判模型评分"),
    "exact": ("exact answer", "答案完全一致"),
    "f1": ("overlap with the reference (F1)", "与参考答案重合度（F1）"),
    "number": ("number within tolerance", "数值在误差内"),
    "auth_password": ("Password", "密码"),
    "auth_login": ("Log in", "登录"),
    "auth_login_provider": ("Log in with your account", "使用账户登录"),
    "auth_wrong": ("Wrong password.", "密码错误。"),
    "auth_wait": ("Too many wrong passwords from your address: try again in {s} s.",
                  "来自您地址的错误密码次数过多：请在 {s} 秒后再试。"),
    "auth_next": ("The next try is possible in {s} s.", "{s} 秒后可再试。"),
    "auth_all_addresses": ("every address (server.address is empty or unset)",
                           "所有地址（server.address 为空或未设置）"),
    "auth_exposed": ("ModelPick is served on {address} without a password. Set MODELPICK_PASSWORD (or [auth] in "
                     "Streamlit secrets) and restart, or serve on 127.0.0.1 and use an SSH tunnel.",
                     "ModelPick 正在 {address} 上提供服务但未设置密码。请设置 MODELPICK_PASSWORD（或在 Streamlit secrets 中"
                     "配置 [auth]）后重启，或仅监听 127.0.0.1 并使用 SSH 隧道访问。"),
    "scen_saved_where": ("Your scenarios are kept in {folder} (set MODELPICK_USER_SCENARIOS_DIR to move them); "
                         "documents they name belong there too.",
                         "你的场景保存在 {folder}（可用 MODELPICK_USER_SCENARIOS_DIR 修改）；场景引用的文档也应放在该目录。"),
    "cmp_busy_host": ("Run {run_id}: other processes kept the CPU {pct}% busy while it ran, so its timings are "
                      "not trustworthy; run it again on a quiet machine.",
                      "测试 {run_id}：运行期间其他进程占用了 {pct}% 的 CPU，其计时数据不可信；请在空闲机器上重跑。"),
    "home_verdicts": ("Current verdict per scenario", "各场景当前结论"),
    "home_open_recommend": ("Open the recommendation", "查看选型建议"),
    "rep_title": ("ModelPick decision summary: {scenario}", "ModelPick 选型决策报告：{scenario}"),
    "rep_generated": ("Generated {when}", "生成于 {when}"),
    "rep_verdict": ("Verdict", "结论"),
    "rep_weights": ("Weights", "权重"),
    "rep_normalisation": ("Normalisation", "归一化方法"),
    "rep_constraints": ("Constraints", "约束条件"),
    "rep_excludes": ("excludes", "排除了"),
    "rep_binds": ("binds: it removes the unconstrained leader", "起决定作用：排除了无约束时的领先者"),
    "rep_decision_table": ("Decision table (95% intervals; a winner only where the difference is beyond noise)",
                           "决策表（95% 置信区间；仅当差异超出噪声时才判定胜者）"),
    "rep_categories": ("Findings by category", "分类别结果"),
    "rep_sensitivity": ("What would change the verdict", "什么会改变结论"),
    "rep_cost": ("Cost", "成本"),
    "rep_examples": ("Where the answers differ most", "回答差异最大的用例"),
    "rep_caveats": ("Caveats", "注意事项"),
    "rep_bound": ("What the hardware allows", "硬件上限"),
    "rep_bound_line": ("{model} reaches {pct} of what this machine allows ({measured} of {bound} tokens/s at batch 1; "
                       "bandwidth {bw} GB/s, {source})",
                       "{model} 达到本机上限的 {pct}（单请求 {measured} / {bound} token/秒；带宽 {bw} GB/秒，{source}）"),
    "bw_measured": ("measured here {day}: numpy copy of {mib} MiB, best of 5 ({command})",
                    "{day} 在本机实测：numpy 复制 {mib} MiB，取 5 次最佳（{command}）"),
    "bw_gpu_table": ("GPU table: {gpu} ({source})", "GPU 参数表：{gpu}（{source}）"),
    "bound_tok_per_s": ("Bound (tokens/s)", "上限（token/秒）"),
    "bound_share": ("Share of the bound", "占上限比例"),
    "bandwidth_source": ("Bandwidth from", "带宽来源"),
    "rep_repro": ("Reproducibility", "可复现信息"),
    # what the engine says about a decision (engine.i18n.Msg): caveats, why a model is out, cost notes
    "cav_dropped": ("criterion {criterion} left out of the score ({why}); the other weights were rescaled",
                    "指标“{criterion}”未计入得分（{why}）；其余权重已按比例调整"),
    "cav_tools_silent": ("no answer of {model} carried a tool call on its {n} tool cases: its server or chat "
                         "template may not pass tools, so its scores there say nothing of what the model can do",
                         "{model} 在 {n} 个工具用例上的回答都没有发出工具调用：它的服务器或对话模板可能没有传递工具，"
                         "因此这些用例的得分不能说明模型本身的能力"),
    "cav_needs_repeats": ("consistency needs repeats: pass^k is the chance that all k tries of a case succeed, "
                          "and each case ran once (run each case two or more times)",
                          "一致性需要重复运行：k 次全对率是同一用例 k 次尝试全部成功的概率，而每个用例只运行了一次"
                          "（请让每个用例运行两次或更多次）"),
    "cav_one_piece": ("no decode rate for {models}: the answers came in one piece",
                      "{models} 没有生成速度：回答是一次性整段返回的"),
    "cav_not_measured_for": ("not measured for {models}", "{models} 未测得该项"),
    "cav_one_model": ("only one model was run: there is nothing to compare it with", "只运行了一个模型：没有可对比的对象"),
    "cav_binds": ("constraint {constraint} binds: without it {model} would lead",
                  "约束“{constraint}”起决定作用：若去掉它，{model} 将领先"),
    "cav_bound_failed": ("hardware bound not computed: {error}", "未能计算硬件上限：{error}"),
    "cav_timing_weight": ("{text} (timings carry {share} of the weight)", "{text}（计时类指标占权重的 {share}）"),
    "cav_host_memory": ("GPU memory not measured for {models}: memory is the host memory the model added",
                        "{models} 未测得显存：所示内存为模型加载后增加的主机内存"),
    "cav_cost_estimated": ("cost for {models} is estimated from the memory-bandwidth bound, not measured on that GPU",
                           "{models} 的成本按显存带宽上限估算，并非在该 GPU 上实测"),
    "cav_cost_unknown": ("cost unknown for {models}: {why}", "{models} 的成本未知：{why}"),
    "cav_model_note": ("{model}: {note}", "{model}：{note}"),
    "cav_no_capacity": ("no capacity figure", "没有容量数据"),
    "rep_not_weighed": ("not weighed: {criterion} ({why})", "未计入：{criterion}（{why}）"),
    "warn_timing_limit_not_applied": ("timing limit not applied: the {what} limit was left out because the "
                                      "timings are untrusted on this host ({why}); every model stays eligible on it "
                                      "(rerun on a quiet machine, or trust the timings anyway)",
                                      "未应用时间限制：{what}限制被忽略，因为本机的计时不可信（{why}）；所有模型在这一项上都保持合格"
                                      "（请在空闲的机器上重新运行，或选择仍然信任计时）"),
    "cav_beyond_bound": ("decode rates past what the machine's memory bandwidth allows ({models}): the "
                         "server's figures cannot be right, so throughput is not ranked on",
                         "解码速率超出了机器内存带宽所允许的上限（{models}）：服务器给出的数字不可能正确，因此不按吞吐排名"),
    "cav_all_missing": ("every generation of {models} is missing: the server or the network failed them "
                        "(resume the run once it answers)",
                        "{models} 的所有生成都缺失：服务器或网络使它们失败（服务恢复后用 resume 继续运行）"),
    "cav_missing": ("generations missing because the server or the network failed them (a 429 or 5xx, a refused "
                    "or broken connection), not scored and not counted against the model; `resume` runs them "
                    "again: {per_model}",
                    "因服务器或网络故障（429 或 5xx、连接被拒绝或中断）而缺失的生成，不评分、不计入模型的得分；"
                    "`resume` 会重新运行它们：{per_model}"),
    "cav_failed": ("{n} of {total} generations failed and score 0 on their checks",
                   "{total} 次生成中有 {n} 次失败，其检查项计 0 分"),
    "cav_over_context": ("{n} prompts exceeded a model's context and are not scored",
                         "{n} 个提示超出了模型的上下文长度，未计分"),
    "cav_no_checks": ("no checks were scored: quality is not measured", "没有任何检查项得分：回答质量未被测量"),
    "cav_few_cases": ("only {n} cases: intervals are wide and small differences cannot be told apart",
                      "只有 {n} 个用例：置信区间很宽，细小差异无法区分"),
    "cav_many_runs": ("models come from {n} different runs; timings compare only if the hosts and load matched",
                      "各模型来自 {n} 次不同的测试；只有主机与负载相同时计时才可比"),
    "src_judge_agrees": ("judged in part by {judge}, which agrees with your raters {pct} of the time",
                         "部分由 {judge} 评判，其与你的评审者一致的比例为 {pct}"),
    "src_judge_left_out": ("{judge}'s scores left out (no better than chance)", "{judge} 的评分未计入（不比随机更好）"),
    "src_judge_unmeasured": ("judged in part by {judge}, not measured against your raters",
                             "部分由 {judge} 评判，尚未与你的评审者对照"),
    "judge_agrees": ("the judge {judge} agrees with your raters {pct} of the time (Cohen's kappa {kappa}, "
                     "95% interval {low} to {high}, {cases} cases)",
                     "裁判模型 {judge} 与你的评审者一致的比例为 {pct}（Cohen's kappa {kappa}，95% 区间 {low} 至 {high}，"
                     "{cases} 个用例）"),
    "judge_chance": ("the judge {judge} agrees with your raters {pct} of the time, no better than chance (Cohen's "
                     "kappa {kappa}, 95% interval {low} to {high}, {cases} cases)",
                     "裁判模型 {judge} 与你的评审者一致的比例为 {pct}，并不比随机更好（Cohen's kappa {kappa}，"
                     "95% 区间 {low} 至 {high}，{cases} 个用例）"),
    "judge_no_figure": ("the judge {judge}: no agreement figure ({why})", "裁判模型 {judge}：无一致性数据（{why}）"),
    "judge_unmeasured": ("the judge {judge} is not measured against your raters: judge pairs (engine judge) and blind "
                         "A/B votes (Rate page) on the same cases tell how far to trust it",
                         "裁判模型 {judge} 尚未与你的评审者对照：对同一批用例进行成对评判（engine judge）和盲评投票"
                         "（评分页面）即可得知它是否可信"),
    "judge_left_out": ("scores of {judges} left out of the verdict: no better than chance against your raters "
                       "(--keep-judge keeps them)",
                       "{judges} 的评分未计入结论：与你的评审者相比并不优于随机（--keep-judge 可保留）"),
    "agree_too_few": ("only {n} cases were both judged and voted on; at least {minimum} are needed",
                      "同时有裁判评判和投票的用例只有 {n} 个；至少需要 {minimum} 个"),
    "agree_no_shared": ("the judge ran on other cases than the votes ({judged} judged, {voted} voted, none in common)",
                        "裁判评判的用例与投票的用例不同（评判 {judged} 个，投票 {voted} 个，没有重合）"),
    "agree_one_outcome": ("every verdict was the same, so kappa cannot tell agreement from chance",
                          "所有判定都相同，kappa 无法区分一致与随机"),
    "agree_none": ("no judge pairs", "没有成对评判"),
    "timing_busy": ("run {run} shared its machine with other work (other processes took {pct}% of the CPU)",
                    "测试 {run} 运行时机器上还有其他任务（其他进程占用了 {pct}% 的 CPU）"),
    "timing_mixed_hosts": ("the models were timed on different machines ({hosts})",
                           "各模型的计时来自不同的机器（{hosts}）"),
    "timing_model_host": ("{model} on {host}", "{model} 在 {host}"),
    "timing_left_out": ("Decided on {used} only: {criteria} left out, because the timings cannot decide ({why}). "
                        "Rerun on a quiet machine, or trust them anyway (\"Trust these timings\" on the Recommend page, "
                        "--trust-timings on the command line).",
                        "仅依据{used}作出结论：{criteria}未计入，因为这些计时不足以作判断（{why}）。"
                        "请在空闲的机器上重新测试，或仍然采用这些计时（选型建议页的“采用这些计时”，命令行的 --trust-timings）。"),
    "timing_left_out_board": ("Decided on {used} only: {criteria} left out, because the timings cannot decide "
                              "({why}). Timings measured on a quiet machine would let them count.",
                              "仅依据{used}作出结论：{criteria}未计入，因为这些计时不足以作判断（{why}）。"
                              "在空闲的机器上测得的计时才能计入。"),
    "timing_trusted_by_user": ("Timings weighed at your request, although {why}.",
                               "应你的要求计入了计时，尽管{why}。"),
    "cav_timing_untrusted": ("the timings cannot decide: {why}", "计时不足以作判断：{why}"),
    "cav_busy": ("run {run}: other processes kept the CPU {pct}% busy while it ran; its timings are not trustworthy",
                 "测试 {run}：运行期间其他进程占用了 {pct}% 的 CPU，其计时数据不可信"),
    "cav_no_schedule": ("run {run}: the order of its models was not recorded (models then ran one after the other), "
                        "so its timings may favour one of them",
                        "测试 {run}：未记录模型的运行顺序（当时模型依次运行），其计时可能偏向其中一个"),
    "more_within_tie": ("the observed difference ({diff}) is within the tie margin ({tie}); more cases would not "
                        "separate models this close", "观测到的差异（{diff}）在持平阈值（{tie}）之内；再多用例也无法区分如此接近的模型"),
    "more_cases_cost": ("running them takes about {hours} GPU hours at the measured speed",
                        "按实测速度运行这些用例约需 {hours} GPU 小时"),
    "more_cases_cost_priced": ("running them takes about {hours} GPU hours at the measured speed, "
                               "about {cost} {currency} on {gpus}",
                               "按实测速度运行这些用例约需 {hours} GPU 小时，在 {gpus} 上约 {cost} {currency}"),
    "more_no_spread": ("no spread between draws", "各次重抽样之间没有差异"),
    "more_cases_needed": ("about {n} more cases at the observed difference; repeats of the same cases narrow timing "
                          "noise only, not a quality gap",
                          "按当前差异约需再增加 {n} 个用例；重复同一用例只能降低计时噪声，不能拉开质量差距"),
    "why_vram_unknown": ("GPU memory unknown (not measured, no catalog figures)", "显存未知（未实测，目录中也没有数据）"),
    "why_vram_over": ("needs {need} GB GPU memory ({how}) > budget {budget} GB", "需要 {need} GB 显存（{how}），超出预算 {budget} GB"),
    "how_measured": ("measured", "实测"),
    "how_estimated": ("estimated", "估算"),
    "why_no_fit": ("does not fit {gpu}: needs {need} GB", "{gpu} 放不下：需要 {need} GB"),
    "what_ttft": ("TTFT", "首字延迟"),
    "what_latency": ("latency", "响应时间"),
    "why_p95_unmeasured": ("{what} p95 not measured", "{what} P95 未测得"),
    "why_p95_over": ("{what} p95 {p95} ms > SLA {limit} ms", "{what} P95 为 {p95} 毫秒，超过上限 {limit} 毫秒"),
    "why_licence_unknown": ("licence unknown (not in the catalog)", "许可证未知（不在模型目录中）"),
    "why_licence": ("licence {licence} not allowed", "许可证 {licence} 不在允许范围内"),
    "why_quality_low": ("quality {q} < minimum {minimum}", "质量分 {q} 低于最低要求 {minimum}"),
    "why_quality_unmeasured": ("quality not measured", "回答质量未测得"),
    "mem_unknown": ("unknown ({missing} not in the catalog)", "未知（目录中没有{missing}）"),
    "mem_weights": ("weights", "权重大小"),
    "mem_kv": ("layer/head figures", "层数/注意力头数据"),
    "mem_detail": ("{total} GB = weights {weights} + KV cache {kv} ({context} tokens x {conc}) + overhead {overhead}",
                   "{total} GB = 权重 {weights} + KV 缓存 {kv}（{context} token × {conc}）+ 额外开销 {overhead}"),
    "more_min_cases": ("only {n} cases: a winner needs at least {minimum}, whatever the resamples say",
                       "只有 {n} 个用例：无论重抽样结果如何，判定胜者至少需要 {minimum} 个用例"),
    "note_more_than_any": ("needs {need} GB, more than any GPU", "需要 {need} GB，超过任何一款 GPU"),
    "note_no_gpu": ("no GPU chosen: memory {why}", "未选定 GPU：显存 {why}"),
    "note_no_price": ("no price for {gpu}", "没有 {gpu} 的价格"),
    "note_converted": ("converted from {currency} at {rate} CNY/USD (assumed)", "由 {currency} 按 {rate} 人民币/美元换算（假定汇率）"),
    "note_capacity_unknown": ("capacity unknown: not measured on this GPU and no catalog weights for an estimate",
                              "容量未知：未在该 GPU 上实测，目录中也没有可用于估算的权重数据"),
    "note_estimated": ("estimated: {share} of the memory-bandwidth bound ({bw} GB/s), batch 1",
                       "估算：显存带宽上限（{bw} GB/秒）的 {share}，单请求"),
    "note_sequential": ("GPUs from a sequential run's capacity: assumes no batching, so an upper bound (a load sweep "
                        "at concurrency {conc} measures the batched capacity)",
                        "GPU 数量按顺序运行的容量计算：假定不做批处理，因此是上限（在并发 {conc} 下做负载扫描可测得批处理容量）"),
    "note_no_fit": ("does not fit {gpu} ({gb} GB): needs {need} GB", "{gpu}（{gb} GB）放不下：需要 {need} GB"),
    "note_fit_unknown": ("memory fit on {gpu} unknown: {how}", "能否放进 {gpu} 未知：{how}"),
    # the decision summary's lead page and reproducibility table
    "rep_scenario_line": ("{name}: {cases} cases, each run {repeats}×, {models} models compared",
                          "{name}：{cases} 个用例 × 每例 {repeats} 次，对比 {models} 个模型"),
    "rep_why": ("Why", "理由"),
    "rep_why_ahead": ("{criterion} ({weight} of the weight): {lead} {a} against {other} {b}",
                      "{criterion}（权重 {weight}）：{lead} 为 {a}，{other} 为 {b}"),
    "rep_why_behind": ("{criterion} ({weight} of the weight) favours {other}: {b} against {lead} {a}",
                       "{criterion}（权重 {weight}）对 {other} 有利：{b}，{lead} 为 {a}"),
    "rep_why_even": ("{criterion} ({weight} of the weight): level, {lead} {a} and {other} {b}",
                     "{criterion}（权重 {weight}）：持平，{lead} 为 {a}，{other} 为 {b}"),
    "rep_why_single": ("Only one model was measured: there is no comparison behind the verdict.",
                       "只测了一个模型：结论背后没有对比。"),
    "rep_cost_lead": ("Cost", "成本"),
    "rep_risks": ("Risks", "风险"),
    "rep_no_risks": ("Nothing found that bears on the verdict itself; the caveats below concern single figures.",
                     "未发现影响结论本身的问题；下文的注意事项只涉及个别数据。"),
    "rep_changes": ("What would change it", "什么会改变结论"),
    "rep_change_above": ("{criterion} weighted above {share} (now {now}): {model} would lead",
                         "若“{criterion}”权重高于 {share}（当前 {now}）：{model} 将领先"),
    "rep_change_below": ("{criterion} weighted below {share} (now {now}): {model} would lead",
                         "若“{criterion}”权重低于 {share}（当前 {now}）：{model} 将领先"),
    "rep_change_constraint": ("without the {c} constraint, {m} would lead", "若去掉“{c}”约束，{m} 将领先"),
    "rep_evidence": ("The evidence", "依据"),
    "rep_prompt": ("What the user asked", "用户的提问"),
    "rep_n_cases": ("Cases", "用例数"),
    "rep_repro_full": ("The full record (each run's settings and order, hardware, libraries, model files) is {where}.",
                       "完整记录（每次测试的参数与顺序、硬件、库版本、模型文件）见{where}。"),
    "rep_attached_pdf": ("attached to this PDF as the file {name}", "本 PDF 的附件 {name}"),
    "rep_attached_html": ("in the section below (click to open)", "下方可展开的部分"),
    "rep_attached_md": ("in the file {name} beside this one", "同目录下的文件 {name}"),
    "rep_repro_show": ("The full record (JSON)", "完整记录（JSON）"),
    "rep_r_item": ("What", "项目"),
    "rep_r_value": ("Value", "内容"),
    "rep_r_run": ("Run (started, status)", "测试（开始时间、状态）"),
    "rep_r_params": ("Generation settings", "生成参数"),
    "rep_r_params_value": ("repeats {repeats}, max tokens {max_tokens}, temperature {temperature}, seed {seed}",
                           "重复 {repeats} 次，最大 token 数 {max_tokens}，温度 {temperature}，随机种子 {seed}"),
    "rep_r_order": ("Run order", "运行顺序"),
    "rep_r_order_value": ("{mode}, {n} steps (the full order is in the record)", "{mode}，共 {n} 步（完整顺序见完整记录）"),
    "rep_r_host": ("Machine", "机器"),
    "rep_r_cores": ("cores", "核"),
    "rep_r_libraries": ("Libraries", "库版本"),
    "rep_r_model": ("Model", "模型"),
    "too_few_cases": ("too few cases (< {n})", "用例太少（< {n}）"),
    "did_not_decide": ("—, did not decide: {why}", "—，未参与决定：{why}"),
    "capsrc_sweep": ("load sweep", "负载扫描"),
    "capsrc_sweep_max": ("highest level meeting the SLOs (load sweep)", "满足 SLO 的最高负载（负载扫描）"),
    "note_capacity_max_rate": ("capacity: {rate} requests/s, the highest arrival rate at which {share} of "
                               "requests met the SLOs ({slo}), found by a load sweep's search (--find-max)",
                               "容量：{rate} 次请求/秒，即 {share} 的请求满足 SLO（{slo}）的最高到达速率，"
                               "由负载扫描的搜索（--find-max）得出"),
    "note_capacity_max_concurrency": ("capacity: the goodput at concurrency {c}, the highest at which {share} of "
                                      "requests met the SLOs ({slo}), found by a load sweep's search (--find-max)",
                                      "容量：并发 {c} 时的有效吞吐量，即 {share} 的请求满足 SLO（{slo}）的最高并发，"
                                      "由负载扫描的搜索（--find-max）得出"),
    "capsrc_sequential_run": ("sequential run", "顺序运行"),
    "capsrc_estimated": ("estimated", "估算"),
    "unit_score": ("(score 0-1)", "（0-1 分）"),
    "unit_ms": ("ms", "毫秒"),
    "unit_tok_s": ("tokens/s", "token/秒"),
    "unit_s": ("s", "秒"),
    "unit_mb": ("MB", "MB"),
    "unit_per_1k": ("per 1,000 requests", "每千次请求"),
    "unit_tokens": ("tokens", "token"),
    "unit_ways": ("ways to serve", "种部署方式"),
    "unit_votes": ("of votes won", "胜票占比"),
    # the cloud session's summary (engine.cloud.Session.summary)
    "cloud_sum_price_old": ("(this price is {days} days old: check it before booking)",
                            "（该价格已有 {days} 天：预订前请核实）"),
    "cloud_sum_price": ("{price} {currency}/h at {provider} ({tier}; source {source}, seen {seen})",
                        "{price} {currency}/小时，{provider}（{tier}；来源 {source}，查询于 {seen}）"),
    "cloud_sum_no_price": ("no price in the table", "价格表中没有价格"),
    "cloud_sum_cluster": ("cluster {name}: {gpu} ({gb} GB), disk {disk} GB, models {models}; {price}",
                          "集群 {name}：{gpu}（{gb} GB），磁盘 {disk} GB，模型 {models}；{price}"),
    "cloud_sum_cost_unknown": ("unknown (a GPU without a price)", "未知（有 GPU 没有价格）"),
    "cloud_sum_cost": ("estimated cost: {cost} for {hours} h", "预计费用：{hours} 小时 {cost}"),
    "cloud_sum_spot": (" (spot may be cheaper; the estimate uses the price table)", "（竞价实例可能更便宜；估算按价格表）"),
    "cloud_sum_launch": ("launch:   python -m engine cloud launch {task}   (or: sky launch -c {name} {task})",
                         "启动：    python -m engine cloud launch {task}   （或：sky launch -c {name} {task}）"),
    "cloud_sum_fetch": ("fetch:    python -m engine cloud fetch {name}", "取回结果：python -m engine cloud fetch {name}"),
    "cloud_sum_down": ("tear down: sky down {name}", "释放集群：sky down {name}"),
    "rec_download_format": ("Format", "格式"),
    "dl_md": ("Markdown (+ JSON record, zip)", "Markdown（附 JSON 记录，zip）"),
    "dl_html": ("HTML", "HTML"),
    "dl_json": ("JSON", "JSON"),
    "dl_pdf": ("PDF", "PDF"),
    "rec_prepare": ("Prepare the summary", "生成报告"),
    "rec_preparing": ("Writing the summary…", "正在生成报告…"),
    "rec_download_ready": ("Download {name} ({kb} KB)", "下载 {name}（{kb} KB）"),
    "rec_download_stale": ("The decision has changed since the summary was prepared: prepare it again.",
                           "报告生成后决策已有变化：请重新生成。"),
    "rec_download_failed": ("The summary could not be written: {error}", "无法生成报告：{error}"),
    # what a check says about an answer (stored in English with the check; said again by the pages)
    "chk_equals": ("equals the expected text", "与期望文本一致"),
    "chk_not_equals": ("not the expected text", "与期望文本不一致"),
    "chk_starts": ("starts with {what}", "以 {what} 开头"),
    "chk_not_starts": ("does not start with {what}", "不以 {what} 开头"),
    "chk_edit_distance": ("edit distance {d} (max {max})", "编辑距离 {d}（最多 {max}）"),
    "chk_edit_distance_over": ("edit distance over {max} (max {max2})", "编辑距离超过 {max}（最多 {max2}）"),
    "chk_not_json": ("not JSON: {why}", "不是 JSON：{why}"),
    "chk_json_schema_errors": ("JSON, {n} schema error(s): {why}", "是 JSON，但有 {n} 处不符合模式：{why}"),
    "chk_valid_json": ("valid JSON", "有效的 JSON"),
    "chk_valid_json_schema": ("valid JSON matching the schema", "有效的 JSON，且符合模式"),
    "chk_negated": ("not: {detail}", "取反：{detail}"),
    "chk_found_n": ("found {found}/{total}", "找到 {found}/{total}"),
    "chk_found_missing": ("found {found}/{total}; missing: {missing}", "找到 {found}/{total}；缺少：{missing}"),
    "chk_found_one": ("found: {what}", "找到：{what}"),
    "chk_none_of": ("none of: {what}", "一个也没有：{what}"),
    "chk_must_not": ("must not contain: {what}", "不应包含：{what}"),
    "chk_none_present": ("none present", "均未出现"),
    "chk_regex_slow": ("/{pattern}/ ran over {s} s on this answer (a pattern that backtracks without end); counted "
                       "as failed", "/{pattern}/ 在此回答上运行超过 {s} 秒（模式会无限回溯）；按未通过计"),
    "chk_matched": ("matched {what}", "匹配到 {what}"),
    "chk_no_match": ("no match for /{pattern}/", "没有匹配 /{pattern}/"),
    "chk_no_sentences": ("no sentences", "没有句子"),
    "chk_sentences": ("{n} sentences (max {max})", "{n} 句（最多 {max} 句）"),
    "chk_sentence_chars": ("{within}/{total} sentences within {value} chars (lengths {lengths})",
                           "{within}/{total} 句不超过 {value} 字（各句长度 {lengths}）"),
    "chk_min_chars": ("{n} chars (min {min})", "{n} 字（至少 {min} 字）"),
    "chk_max_chars": ("{n} chars (max {max})", "{n} 字（最多 {max} 字）"),
    "chk_no_letters": ("no letters in the answer", "回答中没有文字"),
    "chk_language": ("{share} {language} (need {need})", "{language} 占 {share}（要求 {need}）"),
    "chk_declined": ("declined ({marker})", "拒答（{marker}）"),
    "chk_should_decline": ("answered where it should have declined", "应当拒答却作答了"),
    "chk_should_answer": ("declined ({marker}) where it should have answered", "应当作答却拒答了（{marker}）"),
    "chk_answered": ("answered", "已作答"),
    "chk_not_measured": ("{what} not measured", "{what} 未测得"),
    "chk_sla": ("{what} {got} (SLA {limit})", "{what} {got}（上限 {limit}）"),
    "chk_no_json": ("no JSON found in the answer", "回答中没有 JSON"),
    "chk_schema_errors": ("{n} schema error(s); at {where}: {message}", "{n} 处不符合 schema；位置 {where}：{message}"),
    "chk_schema_ok": ("valid JSON matching the schema", "JSON 有效且符合 schema"),
    "chk_repeats_line": ("degenerate: it repeats one line {n} times ({shown})", "退化：同一行重复 {n} 次（{shown}）"),
    "chk_loops": ("degenerate: it loops ({share} of its 6-word runs are repeats)",
                  "退化：循环输出（{share} 的 6 词片段是重复的）"),
    "chk_echo": ("degenerate: an echo of the prompt ({share} of {shown} repeated)",
                 "退化：照抄提示（{shown} 的 {share} 被重复）"),
    "chk_tests_passed": ("{passed}/{total} hidden tests passed", "通过 {passed}/{total} 个隐藏测试"),
    "chk_tests_passed_first": ("{passed}/{total} hidden tests passed; {first}", "通过 {passed}/{total} 个隐藏测试；{first}"),
    "chk_no_tests_ran": ("no tests ran", "没有运行任何测试"),
    "chk_states": ("states {found}/{total} printed lines", "说出了 {found}/{total} 行输出"),
    "chk_states_missing": ("states {found}/{total} printed lines; missing: {what}",
                           "说出了 {found}/{total} 行输出；缺少：{what}"),
    "chk_prints_nothing": ("the snippet prints nothing to compare with", "代码片段没有输出可供对比"),
    "chk_on_correct": ("on the correct code: {error}", "在正确代码上：{error}"),
    "chk_no_tests": ("the answer contains no tests", "回答中没有测试"),
    "chk_fails_correct": ("fails on the correct code: {what}", "在正确代码上失败：{what}"),
    "chk_caught": ("{n} tests pass on the correct code; caught {caught}/{total} buggy versions",
                   "{n} 个测试在正确代码上通过；发现 {caught}/{total} 个有缺陷的版本"),
    "chk_query_failed": ("the query failed: {error}", "查询失败：{error}"),
    "chk_rows_ok": ("{n} rows, as expected", "{n} 行，符合预期"),
    "chk_rows_missing": ("got {n} rows, expected {m}; missing e.g. {row}", "得到 {n} 行，预期 {m} 行；例如缺少 {row}"),
    "chk_rows_order": ("got {n} rows, expected {m}; order or extra rows differ", "得到 {n} 行，预期 {m} 行；顺序不同或有多余的行"),
    "chk_judge_unreadable": ("the judge gave no readable score", "裁判模型没有给出可读的分数"),
    "chk_judged": ("judged {n}/{scale}", "裁判评分 {n}/{scale}"),
    "chk_matches": ("matches {ref}", "与 {ref} 一致"),
    "chk_is_not": ("{got} is not {refs}", "{got} 不是 {refs}"),
    "chk_f1": ("token F1 {f1} against {ref} (pass at {min})", "与 {ref} 的 token F1 为 {f1}（{min} 及格）"),
    "chk_no_number": ("no number in the answer (expected {target})", "回答中没有数字（预期 {target}）"),
    "chk_within": ("{closest} is within {allowed} of {target}", "{closest} 与 {target} 相差不超过 {allowed}"),
    "chk_closest": ("closest number {closest}, expected {target} ± {allowed}", "最接近的数字为 {closest}，预期 {target} ± {allowed}"),
    "chk_error": ("check error: {error}", "检查出错：{error}"),
}


# Under the tests (tests/conftest.py sets it) a missing label is an error, not the key shown as text.
STRICT = os.environ.get("MODELPICK_STRICT_LABELS") == "1"


def t(key: str, lang: str = "en", **kwargs) -> str:
    """The label for `key` in `lang`. A key with no label shows as itself, or raises KeyError under
    the tests; for what may be a user's own word (a category), use `label()`."""
    pair = TEXT.get(key)
    if pair is None and STRICT:
        raise KeyError(f"no label {key!r} in engine/i18n.py")
    text = key if pair is None else pair[1 if lang == "zh" else 0]
    return text.format(**kwargs) if kwargs else text


def label(key: str, lang: str = "en") -> str:
    """A known word (a shipped category, a status) in `lang`; a user's own word as it is written."""
    return t(key, lang) if key in TEXT else str(key)


class Msg(str):
    """A sentence the engine says (a caveat, a cost note, why a model was excluded): its English text
    as a plain `str`, so it is stored, compared and exported as before, and its key and parameters,
    so a page or a report in 中文 can say it again with `say()`. Parameters that are messages
    themselves are said in the same language."""

    key: str
    params: dict

    def __new__(cls, key: str, **params):
        if key not in TEXT:
            raise KeyError(f"no text for message {key!r}")
        self = super().__new__(cls, t(key, "en", **{k: str(v) for k, v in params.items()}))
        self.key, self.params = key, params
        return _said(self)

    def __reduce__(self):  # a copy (pickle, deepcopy) keeps the key and parameters
        return _msg, (self.key, self.params)

    def say(self, lang: str) -> str:
        return t(self.key, lang, **{k: say(v, lang) for k, v in self.params.items()})


class Joined(str):
    """Messages joined by a separator, said again part by part."""

    parts: list
    sep: str

    def __new__(cls, parts: list, sep: str = "; "):
        self = super().__new__(cls, sep.join(parts))
        self.parts, self.sep = list(parts), sep
        return _said(self)

    def __reduce__(self):
        return Joined, (self.parts, self.sep)

    def say(self, lang: str) -> str:
        sep = {"; ": "；", " and ": "和", ", ": "、"}.get(self.sep, self.sep) if lang == "zh" else self.sep
        return sep.join(say(p, lang) for p in self.parts)


# What was said lately, by its English text: a table column (pandas keeps plain strings) loses the
# message behind a text, and `say()` finds it again here.
_SAID: OrderedDict[str, str] = OrderedDict()
_SAID_MAX = 20_000


_SAID_LOCK = threading.Lock()  # the dashboard's sessions run in threads of one process


def _said(message):
    with _SAID_LOCK:
        _SAID[str(message)] = message
        _SAID.move_to_end(str(message))
        if len(_SAID) > _SAID_MAX:
            _SAID.popitem(last=False)
    return message


def _msg(key: str, params: dict) -> Msg:
    return Msg(key, **params)


def say(text, lang: str = "en") -> str:
    """`text` in `lang`: a message is said again; a check's stored detail is read back against the
    check templates; anything else (a model's name, a server's error) is returned as it is."""
    if not isinstance(text, (Msg, Joined)):
        text = _SAID.get(text, text) if isinstance(text, str) else text
    if isinstance(text, (Msg, Joined)):
        return text.say(lang)
    if lang != "en" and isinstance(text, str) and text:
        return _read_back(text, lang)
    return str(text)


def _template(key: str):
    import re

    parts = re.split(r"\{(\w+)\}", TEXT[key][0])
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(pattern, re.S)


_STORED: list | None = None


def _read_back(text: str, lang: str) -> str:
    """A stored English sentence of a check in `lang`: matched against the templates (the most
    literal first); a parameter that is a label key (ttft_ms) is said too. Parts joined by "; "
    or ", " are read one by one; a text no template matches is returned as it is."""
    global _STORED
    if _STORED is None:
        keys = [k for k in TEXT if k.startswith("chk_")]
        keys.sort(key=lambda k: -len(TEXT[k][0].replace("{", "").replace("}", "")))
        _STORED = [(k, _template(k)) for k in keys]
    for sep in (", ", "; "):  # parts first: a template's last parameter would swallow the rest
        parts = text.split(sep)
        if len(parts) > 1:
            said = [_read_back(p, lang) for p in parts]
            if all(a != b for a, b in zip(said, parts)):
                return ("；" if sep == "; " else "，").join(said)
    for key, rx in _STORED:
        m = rx.fullmatch(text)
        if m:
            return t(key, lang, **{k: t(v, lang) if v in TEXT else v for k, v in m.groupdict().items()})
    return text
