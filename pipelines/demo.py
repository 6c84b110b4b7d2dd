"""Deterministic demo data: the landing files, the truth behind them and the rows the quarantine must catch.

Glossary: dpd = days past due (days since the oldest unpaid due date); fpd = first-payment default
(installment 1 never paid); pii = personal data (phone, ID, card numbers, emails). Amounts are integer cents
and dates integer days since 1970-01-01, so the repayment schedule is built with numpy arrays even for 200k
customers; call transcripts are composed in a Python loop from the phrase banks below. Same arguments, same
bytes.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_AS_OF = date(2026, 6, 30)

REPAYMENT_COLUMNS = ("loan_id", "customer_id", "installment_no", "due_date", "amount_due", "paid_date",
                     "amount_paid")
CUSTOMER_COLUMNS = ("customer_id", "timezone", "language")
TRUTH_COLUMNS = ("customer_id", "archetype", "segment", "sub_reason")
QUARANTINE_COLUMNS = ("source_file", "source_row", "rule")
REPAYMENT_RULES = ("missing_key", "bad_date", "bad_amount", "negative_amount", "paid_too_early",
                   "duplicate_row", "payment_incomplete")
CALL_RULES = ("invalid_json", "missing_key", "bad_timestamp", "unknown_speaker", "empty_transcript",
              "duplicate_call_id")

ARCHETYPE_SHARES: dict[str, float] = {"on_time": 0.55, "hardship": 0.14, "forgetful": 0.14,
                                      "intent_to_default": 0.11, "mixed": 0.06}
SEGMENT_OF_ARCHETYPE: dict[str, str] = {"on_time": "none", "hardship": "hardship", "forgetful": "forgetful",
                                        "intent_to_default": "intent_to_default", "mixed": "needs_review"}
SUB_REASONS: dict[str, tuple[str, ...]] = {
    "hardship": ("job_loss", "illness_injury", "business_failure", "wage_arrears", "family_emergency",
                 "disaster", "reduced_income"),
    "forgetful": ("forgot_date", "auto_debit_problem", "missed_messages", "thought_reminder",
                  "someone_else_pays"),
    "intent_to_default": ("refusal", "evasion", "debt_relief_agency", "disputes_debt", "complaint_threat",
                          "many_lenders"),
}
SEGMENT_OF_REASON: dict[str, str] = {
    reason: segment for segment, reasons in SUB_REASONS.items() for reason in reasons}

AGENT_SCRIPT: dict[str, str] = {
    "zh": "您好这里是XX消费金融贷后服务中心 您尾号{tail}的借款已逾期{days}天 "
          "应还金额{amount}元 请问您什么时候方便处理",
    "en": "Hello this is the customer care team of XX Consumer Finance your installment of {amount} is "
          "{days} days overdue when can you make the payment",
}

ATTEMPTS_FILE = "contact_attempts.csv"
LATER_CURE_SHARE = {"forgetful": 0.45, "hardship": 0.15, "mixed": 0.08, "intent_to_default": 0.04}
CURE_WITHIN_DAYS = 2        # a later payment falls 1-2 days after the first as-of
LATER_CALL_SHARE = 0.12     # chance an overdue customer who takes calls is called on a later day
LATER_CALL_IDS = 500_000    # later nights' call ids start here (CALL-5xxxxx), apart from the first night's
ATTEMPT_DAYS = 14
RECENT_CALL_DAYS = 14
OLDER_CALL_DAYS = 60
CALLED_SHARE = 0.70
BAD_ROW_SHARE = 0.003

# Repayment behaviour patterns (one per loan).
_ON_TIME, _HARDSHIP, _FORGETFUL, _FORGETFUL_CURED, _FPD, _PAID_THEN_STOPPED, _NEW_OVERDUE, _CLOSED = range(8)
_NO_PAYMENT = np.iinfo(np.int64).max
_MIXED_KINDS = ("late_payer_refuses", "fpd_claims_hardship", "new_no_history", "clean_record_refuses")
_MIXED_KIND_SHARES = (0.30, 0.30, 0.25, 0.15)
_MIXED_PATTERN = {"late_payer_refuses": _FORGETFUL, "fpd_claims_hardship": _FPD,
                  "new_no_history": _NEW_OVERDUE, "clean_record_refuses": _HARDSHIP}
_MIXED_REASONS = {"late_payer_refuses": ("refusal", "evasion", "complaint_threat", "disputes_debt"),
                  "fpd_claims_hardship": SUB_REASONS["hardship"],
                  "new_no_history": ("",),
                  "clean_record_refuses": ("refusal", "debt_relief_agency", "many_lenders",
                                           "complaint_threat")}
_TIMEZONES = {
    "zh": (("Asia/Shanghai", 0.90), ("Asia/Singapore", 0.04), ("Asia/Hong_Kong", 0.03),
           ("America/Los_Angeles", 0.03)),
    "en": (("America/New_York", 0.28), ("America/Los_Angeles", 0.18), ("America/Chicago", 0.10),
           ("Europe/London", 0.16), ("Asia/Singapore", 0.16), ("Australia/Sydney", 0.06),
           ("Asia/Hong_Kong", 0.06)),
}

# ----------------------------------------------------------------------------------------------------------
# Phrase banks. Customer text is ASR-style: no punctuation, lower-case English, clauses separated by spaces.
# Slots: {fam} a family member, {dur} a duration, {when} a past moment, {money} an amount in words.
# ----------------------------------------------------------------------------------------------------------
_SLOTS: dict[str, dict[str, tuple[str, ...]]] = {
    "zh": {
        "fam": ("我老婆", "我老公", "我妈", "我爸", "我儿子", "我女儿", "我岳母", "我婆婆", "我奶奶",
                "孩子他爷爷"),
        "dur": ("两个月", "三个月", "半年", "四个多月", "一个多月", "快五个月", "大半年"),
        "when": ("上个月", "上上个月", "前两周", "年初", "三月份", "四月底", "五一之前", "过年那会"),
        "money": ("三千", "五千多", "两万", "八千", "一万多", "好几千", "四五千"),
    },
    "en": {
        "fam": ("my wife", "my husband", "my mom", "my dad", "my son", "my daughter", "my mother in law",
                "my grandma", "my brother"),
        "dur": ("two months", "three months", "six weeks", "half a year", "almost four months",
                "a couple months", "like five months"),
        "when": ("last month", "a few weeks ago", "back in march", "right after new year", "in april",
                 "a couple months back", "early may"),
        "money": ("a few hundred bucks", "three grand", "like two thousand", "five thousand",
                  "a couple grand", "eight hundred dollars"),
    },
}

_CORE: dict[str, dict[str, tuple[str, ...]]] = {
    "job_loss": {
        "zh": ("厂里裁员了 我{when}就没上班了", "我{when}被公司辞退了 现在还没找到工作",
               "公司倒闭了 我失业{dur}了", "我现在没工作 {when}项目结束就把我们都辞了",
               "我们部门整个被裁了 赔偿金到现在还没拿到", "工作丢了 这{dur}一直在找 还没着落",
               "我在工地干活的 {when}活停了 一直没活干", "我是做保安的 {when}小区换物业 我们全被换掉了",
               "我合同到期了 公司不续了 现在待业在家", "被优化了 说是降本增效 {dur}没收入了"),
        "en": ("i got laid off {when}", "the company let me go {when} and i still haven't found anything",
               "my whole department got cut", "i lost my job {when} so there's just no money coming in",
               "the plant shut down and i've been out of work for {dur}",
               "my contract ended and they didn't renew it", "i was let go after the merger",
               "i've been unemployed for {dur} now and my savings are gone",
               "the restaurant i worked at closed down", "they downsized and i was the first one out"),
    },
    "illness_injury": {
        "zh": ("{fam}住院了 {dur}了 钱全花在医院了", "我自己生病了 {when}做了个手术 现在还在家养着",
               "我腿摔断了 打着石膏 上不了班", "{fam}查出来是癌症 在化疗 每个月都要好几万",
               "我在医院呢 刚做完检查 医生说要住院", "我干活的时候把手伤了 老板也不管 现在一分钱收入都没有",
               "{fam}脑梗了 瘫在床上 我得在家照顾", "我得了肾病 要透析 一个礼拜三次",
               "出了个车祸 {when}的事 现在还在康复", "{fam}刚生完孩子大出血 在重症监护室住了半个月"),
        "en": ("{fam} has been in the hospital for {dur}", "i had surgery {when} and i can't work yet",
               "i broke my leg at work and i'm on unpaid leave",
               "{fam} was diagnosed with cancer and the treatment is eating everything",
               "i'm actually in the hospital right now", "i hurt my back and i can't drive so no income",
               "i've been really sick for {dur} and the medical bills keep piling up",
               "{fam} had a stroke and i have to take care of them",
               "i was in a car accident {when} still recovering",
               "i'm on dialysis three times a week i can barely work"),
    },
    "business_failure": {
        "zh": ("我开的小饭馆倒闭了 房租都交不起", "生意做赔了 {when}关门了 还欠着供应商的钱",
               "我是做服装批发的 今年货全压在仓库里卖不出去", "店铺被拆迁了 {dur}没营业 一点收入都没有",
               "我跟人合伙开的公司 合伙人卷钱跑了", "我跑货运的 这{dur}单子少得可怜 亏了{money}",
               "奶茶店开了不到一年就黄了 投进去的钱全打水漂了", "我做工程的 甲方拖着款不给 我这边资金链断了",
               "网店被平台封了 货款也冻结了", "养殖场{when}闹猪瘟 猪全死了"),
        "en": ("my small restaurant went under", "i had to close my shop {when}",
               "the business failed and i still owe suppliers", "my partner walked out and took the money",
               "i run a trucking business and i lost my biggest client",
               "my online store got suspended and the payouts are frozen",
               "the salon closed nobody was coming in",
               "i put everything into the food truck and it didn't work out",
               "my landscaping business dried up this year",
               "a client never paid my invoices and now my company's broke"),
    },
    "wage_arrears": {
        "zh": ("老板拖了{dur}工资了 一分钱没发", "公司欠我们工资 说下个月发 都说了好几次了",
               "我们工地老板跑了 工钱到现在没结", "工资一直拖着 我们都去劳动仲裁了",
               "单位效益不好 工资只发一半 还老是迟发", "包工头说年底才结账 我现在手上一点钱没有",
               "公司账户被冻结了 工资发不出来", "我在厂里干了{dur} 工资卡上一分没进",
               "老板说资金周转不开 让我们再等等", "我们公司欠薪的事都上新闻了 老板人都找不到了"),
        "en": ("my employer hasn't paid me in {dur}", "they keep saying payroll is delayed",
               "the contractor ran off without paying us", "i'm owed three paychecks and they won't say when",
               "my boss says cash is tight and we'll get paid next month",
               "we filed a wage claim because they stopped paying us", "my paycheck bounced",
               "the company's accounts are frozen so no salary", "they only paid half my wages {when}",
               "i've basically been working for free for {dur} they owe me"),
    },
    "family_emergency": {
        "zh": ("家里出事了 {fam}走了 我刚办完丧事", "{fam}出了车祸 在ICU 钱全垫进去了",
               "我在老家 {fam}病危 我回来照顾了", "我离婚了 房子车子都给她了 手上没钱",
               "孩子在学校出了事 要赔人家一大笔钱", "我弟弟欠了高利贷 我把钱都拿去帮他还了",
               "{fam}被人骗了 把家里的积蓄全搭进去了", "我爸去世了 办后事花了{money}",
               "孩子要做手术 我把钱都拿去交押金了", "家里老人摔了一跤 要人照顾 我只能辞职在家"),
        "en": ("my father passed away and i had to cover the funeral", "{fam} was in a bad accident",
               "i had to fly home because {fam} is in critical condition",
               "i'm going through a divorce and everything's frozen",
               "my son got into trouble and i paid his bail",
               "my brother got scammed and i gave him my savings", "my kid needed emergency surgery",
               "i had to take in {fam} and now i'm supporting the whole family",
               "my mom fell and i had to quit to take care of her", "there was a death in the family {when}"),
    },
    "disaster": {
        "zh": ("我们这边发大水 家里全淹了", "{when}台风把我的店给毁了", "家里房子着火了 啥都没了",
               "地震以后我们还在安置点住着呢", "下暴雨把仓库淹了 货全泡坏了",
               "村里泥石流 路都冲断了 出不去也挣不到钱", "大棚被冰雹砸了 今年一季的菜全没了",
               "旱了{dur} 庄稼全干死了 一点收成没有", "我们镇上发洪水 到现在还没通电",
               "山体滑坡把我家房子压了一半"),
        "en": ("our house flooded {when}", "the hurricane wrecked my place",
               "there was a fire in our building and we lost everything", "the storm took out my shop",
               "we're still displaced after the wildfire",
               "the earthquake damaged our home and we're staying with relatives",
               "the flood ruined all my inventory", "a tree came through the roof in the storm",
               "the tornado destroyed our farm", "we got evacuated and we've been in a shelter for {dur}"),
    },
    "reduced_income": {
        "zh": ("现在工资降了一半 只够吃饭的", "厂里没订单 一个月就上十来天班",
               "跑滴滴现在单子太少了 一天跑不到两百", "公司改成底薪加提成了 这{dur}基本就拿个底薪",
               "我被调岗了 工资少了{money}", "外卖单价降了 我一天干十几个小时也挣不了多少",
               "现在只能打零工 有一天没一天的", "奖金全取消了 到手就三千多 房租都要两千",
               "店里生意不行 老板给我们减了工时", "现在我一个人挣钱养全家 {fam}也没工作了"),
        "en": ("my hours got cut in half", "they moved me to part time",
               "i'm only getting a few shifts a week now",
               "uber's been really slow i'm barely making anything",
               "they took away my commission so it's just base pay", "i took a pay cut to keep my job",
               "we're down to one income now {fam} isn't working",
               "overtime's gone and that was half my paycheck", "i'm doing gig work now it's up and down",
               "my salary got reduced when they restructured"),
    },
    "forgot_date": {
        "zh": ("哎呀我给忘了 这个月事太多了", "我以为是下个月呢 记错日子了", "是吗 我还以为我还了呢",
               "我真忘了 最近忙着搬家", "不好意思啊 我这脑子 完全没想起来", "上个月刚换工作 一忙就忘了",
               "我在外地出差 这几天忙晕了 给忘了", "我以为还款日是月底", "我还以为还有几天呢",
               "孩子刚开学 事情一多就忘了这茬"),
        "en": ("oh i totally forgot", "i thought it was due next week", "i completely lost track of the date",
               "wait is it past due i thought i paid it", "i've been traveling and it slipped my mind",
               "i mixed up the dates with my other bills", "sorry i just moved and everything's a mess",
               "i thought the due date was the end of the month", "my bad i just forgot this month",
               "oh shoot i thought i had a few more days"),
    },
    "auto_debit_problem": {
        "zh": ("扣款那张卡换了 新卡还没绑", "我以为是自动扣款的 卡里没钱了吗",
               "我那张卡{when}挂失了 补了张新的忘了改", "工资卡换银行了 旧卡里没钱了",
               "我设置了自动还款啊 怎么没扣成功", "卡过期了吧 是不是绑的那张老卡",
               "我钱存在另一张卡里 扣款卡忘了转钱进去", "银行说我那张卡被限额了 所以没扣上",
               "我支付宝绑的卡解绑了 可能是这个原因", "我记得卡里有钱的 可能被别的扣款先扣走了"),
        "en": ("my card expired so the autopay bounced", "i thought it was on autopay",
               "i switched banks and forgot to update the account",
               "i had to cancel my card after it got stolen",
               "autopay must have failed there wasn't enough in that account",
               "the bank flagged the payment as fraud", "i changed my checking account and didn't update it",
               "my direct debit got cancelled somehow", "i had the money in savings not in checking",
               "the app logged me out and the autopay got turned off"),
    },
    "missed_messages": {
        "zh": ("我没收到短信啊 一直没看到提醒", "我换手机号了 你们的短信我都收不到",
               "短信太多了 我以为是广告就没看", "手机设置了拦截 你们的短信可能被拦了",
               "我很少看APP 不知道已经到期了", "我手机前段时间坏了 刚修好",
               "你们之前打的电话我以为是骚扰电话 就没接", "我在国外待了一段时间 国内的号没开漫游",
               "邮件我都不怎么看的", "我关注了你们公众号 但是好像没推送"),
        "en": ("i never got a text or anything", "i changed my number and didn't get the reminders",
               "your emails go straight to my spam", "i don't really check the app",
               "i thought your calls were spam honestly", "my phone was broken for a couple weeks",
               "i was overseas and my phone wasn't working", "i turned off notifications and missed it",
               "i didn't see any reminder this time", "the letters go to my old address"),
    },
    "thought_reminder": {
        "zh": ("我以为你们打电话是提醒一下", "我每次都是晚一两天还 以为没关系的",
               "晚两天还不行吗 以前也这样没人说啊", "我不知道晚还会上征信啊",
               "之前接到电话我以为就是客服通知一下", "我以为有宽限期呢 晚个两三天不算逾期",
               "啊 这个会影响征信吗 我一直以为是善意提醒", "我一般都是接到你们电话才还的 习惯了",
               "我以为逾期几天没事 反正会还的", "没人跟我说过这样算逾期啊"),
        "en": ("i thought you were just calling to remind me",
               "i always pay a couple days late i didn't think it mattered",
               "i didn't know a few days late would hit my credit", "isn't there a grace period",
               "i thought two days late was fine", "nobody told me this counts as overdue",
               "i usually just pay when you guys call", "oh i thought these were courtesy calls",
               "wait does this actually go on my credit report",
               "i figured a few days wouldn't be a big deal"),
    },
    "someone_else_pays": {
        "zh": ("这个一直是我老公帮我还的 他可能忘了", "我儿子说他会还的 我回头问问他",
               "钱是我姐在还 她这个月可能晚了", "之前是我男朋友还的 我们最近分手了",
               "我老婆管钱 我以为她已经还了", "公司说报销的时候一起转 可能还没到账",
               "这个是我朋友用我名义借的 一直是他在还", "我爸每个月帮我转账的 这次可能他没注意",
               "我让我妹帮我还 她说还了啊", "我跟我对象说好他还的 我问问怎么回事"),
        "en": ("my husband usually pays this he must have forgotten",
               "my son handles the payments i'll ask him", "my wife takes care of the bills",
               "my company was supposed to reimburse it", "my sister's been paying this for me",
               "my ex used to pay it we just split up",
               "my dad sends the money every month maybe he missed it",
               "my roommate pays me back and then i pay you he's late",
               "my boyfriend said he'd take care of it", "my accountant handles this stuff"),
    },
    "refusal": {
        "zh": ("我不会还的 你们去告吧", "没钱 不还 爱怎么样怎么样", "你们利息这么高 我一分都不会还",
               "要钱没有 要命一条", "别打了 我就是不想还", "我不还了 征信花了就花了 无所谓",
               "还什么还 你们就是高利贷", "你们起诉我吧 我等着", "我已经决定不还了 你们看着办",
               "我一分钱都不会给你们的"),
        "en": ("i'm not paying you guys anything", "i'm not going to pay so sue me",
               "go ahead and take me to court", "i don't care about my credit anymore i'm not paying",
               "you're not getting a dime", "your interest is a rip off i'm done paying",
               "i decided i'm not paying this back", "do whatever you want i'm not paying",
               "stop calling i'm not paying", "i won't pay period"),
    },
    "evasion": {
        "zh": ("我现在在开会 回头再说", "你打错了吧 我不认识这个人", "我不是本人 他不在",
               "我在开车 不方便 挂了", "过几天再说吧 现在没空", "行行行 知道了知道了",
               "我再看看吧 到时候再说", "我在外地 回去再处理", "这个号码不是我的了", "你找他去 跟我没关系"),
        "en": ("i'm in a meeting call me later", "wrong number there's nobody here by that name",
               "he's not here i don't know when he'll be back", "i'm driving can't talk",
               "yeah yeah i'll look into it", "i'll deal with it some other time",
               "this isn't my number anymore", "i'm out of the country i'll handle it when i'm back",
               "i'll think about it", "not now i'm busy"),
    },
    "debt_relief_agency": {
        "zh": ("我已经委托律师处理了 有事你们找律师", "有律师帮我处理停息挂账 你们跟他们谈",
               "我找了专门的机构 他们说可以停息挂账", "我在走个性化分期协商 委托给第三方了",
               "有人告诉我可以申请停息挂账 本金分六十期还", "我加了个反催收的群 他们说你们不能这样催",
               "法务公司那边说 让我不要跟你们直接沟通", "我交了代理费 你们跟我的代理人联系",
               "他们教我说 只要投诉你们就不用还利息", "我已经把材料交给协商机构了 你们等通知吧"),
        "en": ("i'm working with a debt settlement company talk to them",
               "my lawyer is handling this contact him",
               "i signed up with a debt relief program they told me to stop paying",
               "the credit counseling agency will be in touch",
               "my attorney said i don't have to talk to you",
               "i'm enrolled in a debt management plan they'll negotiate with you",
               "they told me to stop all payments while they settle",
               "i paid a company to deal with my debts so call them",
               "i've got a cease and desist letter from my lawyer",
               "the agency said you have to freeze the interest"),
    },
    "disputes_debt": {
        "zh": ("这个钱不是我借的 是别人冒用我的身份", "我根本没借过 你们搞错了吧",
               "我早就还清了 你们系统有问题", "这个金额不对 你们多收了我好多钱",
               "当初说好的是免息的 怎么现在有利息了", "那个服务费我根本没同意过",
               "我借的是五千 怎么变成八千多了", "贷款是我前夫用我手机办的 我不认",
               "你们的合同有问题 我不认这个账", "我已经还了 截图都在 你们自己查"),
        "en": ("that's not my loan someone stole my identity", "i never took out a loan with you",
               "i already paid that off check your records", "the amount is wrong you're overcharging me",
               "i was told there was no interest", "i never agreed to those fees",
               "i borrowed five thousand how is it eight now", "my ex took that out in my name",
               "i dispute this debt send me validation", "i have the receipt i paid it already"),
    },
    "complaint_threat": {
        "zh": ("再打电话我就投诉你们 打12378", "你们这是暴力催收 我要去银保监会投诉",
               "我已经录音了 我要投诉到金融监管局", "你们再打我家人电话 我就报警",
               "我要去消协投诉你们 还要发到网上", "信不信我把你们曝光到黑猫投诉",
               "你们打了多少次了 我要告你们骚扰", "我会打人民银行的电话投诉你们", "你们这样我就去12345投诉",
               "你再打一个试试 我直接报警"),
        "en": ("if you call again i'm filing a complaint", "this is harassment i'm reporting you to the cfpb",
               "i'm recording this call and reporting you",
               "call my family one more time and i'm calling the police",
               "i'll file a complaint with the regulator", "i'm going to post about you guys online",
               "i'm contacting the attorney general",
               "you've called me ten times this week that's harassment", "i'll sue you for harassment",
               "i'm reporting this to the better business bureau"),
    },
    "many_lenders": {
        "zh": ("我欠了十几家平台 你们排后面吧", "我网贷太多了 以贷养贷 现在断了",
               "我在好几个平台都逾期了 先还哪个都一样", "信用卡网贷加起来欠了二十多万 你们不是最急的",
               "每天十几个催收电话 我都不接了", "借呗花呗微粒贷全逾期了 你们等着吧",
               "我拆东墙补西墙 现在补不上了", "别家都在催 我先还别家的", "我负债太多了 已经躺平了",
               "我现在到处都是窟窿 你们排队吧"),
        "en": ("i owe like ten lenders right now you're not first",
               "i've got payday loans everywhere i can't keep up", "i'm behind on all my cards not just you",
               "i took a loan to pay a loan and now it's all fallen apart",
               "i've got collectors calling me all day", "i owe way too many people you'll have to wait",
               "every lender is calling me get in line", "i'm paying the other ones first",
               "i'm drowning in debt honestly", "i'm maxed out everywhere"),
    },
}

_STANCE: dict[str, dict[str, tuple[str, ...]]] = {
    "hardship": {
        "zh": ("我不是不想还 实在是没钱", "能不能延期一下", "能不能分期还", "等我找到工作一定还",
               "利息能不能减一点", "我会还的 就是需要点时间", "能不能先还一部分", "你们有没有什么困难政策",
               "我现在真的拿不出来", "下个月发了钱我先还一点", "能不能帮我申请个延期还款",
               "月底发了工资我先还一半", "下周五之前我先还五百", "15号发工资了就还一点", "发工资后第一时间还"),
        "en": ("i want to pay i just can't right now", "can i get an extension", "is there a payment plan",
               "can you defer it a month or two", "i'll pay once i'm back on my feet",
               "can you waive some of the interest", "i can maybe do a small amount",
               "i'm not trying to skip out on it", "is there some kind of hardship program",
               "give me a little time please", "i can pay half after payday", "i'll pay something on the 15th",
               "i can send 200 next friday", "by the end of the month i'll pay part of it"),
    },
    "forgetful": {
        "zh": ("不好意思啊 我今天就还", "我马上在APP上还", "我现在就转", "对不起 晚上下班就还",
               "好的好的 我等下就处理", "今天之内一定还上", "我现在就操作一下", "麻烦你了 我一会就还",
               "我挂了电话就去还", "明天一早就还", "明天上午一定还上"),
        "en": ("sorry about that i'll pay today", "i'll do it right now on the app", "let me pay it tonight",
               "my apologies i'll take care of it this afternoon", "i'll log in and pay right away",
               "thanks for letting me know i'll pay today", "i'll send it as soon as we hang up",
               "oh sorry paying it now", "i'll pay it tomorrow morning", "i'll have it paid by tomorrow"),
    },
    "intent_to_default": {
        "zh": ("别再打了", "随便你们", "你们爱找谁找谁", "就这样吧 挂了", "我没什么好说的", "不要再骚扰我",
               "你们看着办", "有本事上门来"),
        "en": ("stop calling me", "do whatever you want", "don't call this number again", "we're done here",
               "i have nothing else to say", "leave me alone", "whatever", "i'm hanging up"),
    },
    "evasion": {
        "zh": ("回头再说吧", "我再看看", "到时候再说", "我现在没空", "等我忙完这阵", "我先挂了啊"),
        "en": ("i'll get back to you", "maybe later", "i'll see what i can do", "can't talk now",
               "let me check and call you back", "gotta go"),
    },
}

_DETAIL: dict[str, dict[str, tuple[str, ...]]] = {
    "hardship": {
        "zh": ("现在房租都是借的", "家里还有两个孩子要养", "我手上就剩几百块钱", "这{dur}都是靠借钱过日子",
               "我之前一直都按时还的 你们可以查", "信用卡也刷爆了", "{fam}也帮不上忙", "我也很着急"),
        "en": ("i've always paid on time before you can check", "i've got two kids to feed",
               "i'm borrowing from friends just for rent", "i've got like a hundred bucks in my account",
               "i've never missed a payment before this", "{fam} can't help either",
               "i'm stressed out about it"),
    },
    "forgetful": {
        "zh": ("卡里有钱的", "钱不是问题", "我以为早扣了", "我之前都还了的", "不是故意的"),
        "en": ("money's not the issue", "i've got the money", "it's just a mix up", "i always pay",
               "it wasn't on purpose"),
    },
    "intent_to_default": {
        "zh": ("你们那个利息就是高利贷", "我朋友说你们根本不敢怎么样", "我看网上说不还也没事",
               "反正征信已经黑了", "我什么都不怕"),
        "en": ("i read online you can't do anything", "my credit's already shot", "you people are a joke",
               "i'm not scared of you"),
    },
}

_GREETING: dict[str, tuple[str, ...]] = {
    "zh": ("喂", "喂 你好", "喂 哪位", "嗯 喂", "你好", "喂 说话", "喂 喂"),
    "en": ("hello", "hello who's this", "yeah hello", "hi", "yeah", "hello yes"),
}
_INBOUND_OPENING: dict[str, tuple[str, ...]] = {
    "zh": ("喂 你好 我收到你们的短信了", "你好 我想问一下我的借款", "喂 我看到你们打过我电话",
           "你好 我是来问还款的事", "喂 你们给我发短信说逾期了"),
    "en": ("hi i got a text from you guys", "hello i'm calling about my loan",
           "yeah i missed a call from this number", "hi i got a letter about my account",
           "hello someone called me about a payment"),
}
_IDENTITY: dict[str, tuple[str, ...]] = {
    "zh": ("是我", "对 是我", "嗯 我是", "对对对", "是 你说", "啊 是我 什么事", "我就是", "嗯 怎么了",
           "哦 是我是我", "对 我是本人"),
    "en": ("yeah speaking", "yes this is me", "yeah that's me", "uh yes", "who is this", "speaking",
           "yeah what's this about", "this is she", "this is he", "yeah go ahead"),
}
_CLOSER: dict[str, tuple[str, ...]] = {
    "zh": ("好的", "行 就这样吧", "嗯 好", "先这样", "拜拜", "行 知道了", "好吧", "嗯嗯"),
    "en": ("ok bye", "alright", "thanks", "yeah ok", "ok", "bye"),
}
_QUESTION: dict[str, tuple[str, ...]] = {
    "zh": ("那我现在怎么办", "会不会影响征信啊", "你们能不能别打我家里电话", "我要是还不上会怎么样",
           "这个能在APP上操作吗"),
    "en": ("so what are my options", "is this going to hurt my credit", "please don't call my family",
           "what happens if i can't pay", "can i do this on the app"),
}
_WEAK: dict[str, tuple[str, ...]] = {
    "zh": ("现在不方便", "我在忙 等会再说", "喂 喂 听不清", "谁啊", "啊 什么", "我在上班 晚点打", "嗯 知道了",
           "信号不好"),
    "en": ("not a good time", "who is this", "i can't hear you", "i'm at work call later",
           "sorry you're breaking up", "ok", "yeah got it bye", "bad time"),
}
_FILLERS: dict[str, tuple[str, ...]] = {
    "zh": ("嗯", "呃", "啊", "那个", "就是", "这个", "对对对", "然后", "反正", "哎", "唉"),
    "en": ("um", "uh", "like", "you know", "yeah", "so", "i mean", "honestly", "well", "look"),
}
_AGENT_FOLLOW_UP: dict[str, tuple[str, ...]] = {
    "zh": ("请问是您本人吗", "那您大概什么时候能处理呢", "好的 我这边给您记录一下", "您方便说一下具体情况吗",
           "逾期会影响您的个人征信 请您尽快处理", "您可以通过APP还款", "好的 明白了", "那您今天能还上吗",
           "我们这边会给您发一条短信", "嗯 您说"),
    "en": ("am i speaking with the account holder", "when do you think you can make the payment",
           "ok i've made a note on your account", "can you tell me a bit more about your situation",
           "late payments can affect your credit report", "you can pay through the app", "ok i understand",
           "would you be able to pay today", "we'll send you a text with the details", "go ahead"),
}
_PII_CLAUSE = {
    "zh": {"mobile": ("我换号了 新号码是{v}", "你打我这个手机{v}", "有事打{v}找我", "我电话是{v}"),
           "id_card": ("我身份证号是{v}", "你查一下 身份证{v}", "身份证号码{v} 你核对一下"),
           "bank_card": ("我卡号是{v}", "从这张卡扣吧 {v}", "扣款卡换成{v}了"),
           "email": ("你发我邮箱 {v}", "邮箱是{v}")},
    "en": {"us_phone": ("call me at {v}", "my new number is {v}", "you can reach me on {v}"),
           "email": ("email me at {v}", "my email is {v}"),
           "bank_card": ("the card number is {v}", "you can charge {v}", "use the card ending {v}")},
}
_SUPERVISOR = {"zh": "我是这边的主管 我来跟您说一下", "en": "this is the supervisor speaking let me help"}
_BAD_DATES = ("2026-13-45", "2026-02-30", "2026-06-31", "2025-00-12", "2026-04-31", "2025-11-31",
              "2026-09-00")
_BAD_AMOUNTS = ("12,0.0x", "1O0.00", "abc", "1.234.56", "12..50", "350,00x", "#VALUE!", "3 500.0o")
_BAD_TIMESTAMPS = ("{d}T{t}", "{d} {t}", "yesterday afternoon", "{d}T25:61:00+08:00", "06/{dd}/2026 {t}",
                   "not recorded")


@dataclass(frozen=True)
class DemoFiles:
    """Where the demo was written and for which business date."""

    landing_dir: Path
    truth_csv: Path
    expected_quarantine_csv: Path
    as_of: date


def write_demo_data(out_dir: Path, customers: int = 3000, seed: int = 7,
                    as_of: date = DEFAULT_AS_OF) -> DemoFiles:
    """Write landing files, truth.csv and expected_quarantine.csv under ``out_dir``.

    Same arguments give byte-identical files; nothing depends on the clock. This is the first night of the
    demo; :func:`write_demo_night` writes the later ones (same customers, later payments, new calls).
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    out_dir = Path(out_dir)
    landing = out_dir / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    world = _demo_world(customers, seed, as_of)
    profiles, loans, schedule, text_rng = world.profiles, world.loans, world.schedule, world.text_rng
    repayments = repayment_rows(schedule, loans, profiles, world.as_of_day)
    calls, call_counts = world.calls, world.call_counts
    truth = truth_table(profiles, call_counts)

    repayment_lines, repayment_bad = with_bad_repayment_rows(text_rng, repayments)
    call_lines, call_bad = with_bad_call_lines(text_rng, calls, profiles, as_of)
    quarantine = pd.DataFrame(repayment_bad + call_bad, columns=list(QUARANTINE_COLUMNS))
    quarantine = quarantine.sort_values(["source_file", "source_row"], kind="mergesort")

    repayment_lines.to_csv(landing / "repayments.csv", index=False, lineterminator="\n")
    (landing / "calls.jsonl").write_text("".join(line + "\n" for line in call_lines), encoding="utf-8")
    profiles[list(CUSTOMER_COLUMNS)].to_csv(landing / "customers.csv", index=False, lineterminator="\n")
    contact_attempts(world, seed, as_of).to_csv(landing / ATTEMPTS_FILE, index=False, lineterminator="\n")
    files = DemoFiles(landing_dir=landing, truth_csv=out_dir / "truth.csv",
                      expected_quarantine_csv=out_dir / "expected_quarantine.csv", as_of=as_of)
    truth.to_csv(files.truth_csv, index=False, lineterminator="\n")
    quarantine.to_csv(files.expected_quarantine_csv, index=False, lineterminator="\n")
    logger.info("demo: %d customers, %d repayment rows, %d calls, %d bad rows planted, as of %s",
                customers, len(repayment_lines), len(call_lines), len(quarantine), as_of)
    return files


@dataclass
class _World:
    """Everything the first night's files are drawn from; later nights start from the same world."""

    as_of_day: int
    profiles: pd.DataFrame
    loans: pd.DataFrame
    schedule: pd.DataFrame
    calls: list[dict]
    call_counts: np.ndarray
    text_rng: random.Random


def _demo_world(customers: int, seed: int, as_of: date) -> _World:
    rng = np.random.default_rng(seed)
    text_rng = random.Random(seed)
    as_of_day = _day_number(as_of)
    profiles = customer_profiles(rng, customers)
    loans = loan_plans(rng, profiles, as_of_day)
    schedule = installment_payments(rng, loans, as_of_day)
    calls, call_counts = call_records(text_rng, profiles, loans, schedule, as_of)
    return _World(as_of_day, profiles, loans, schedule, calls, call_counts, text_rng)


# ----------------------------------------------------------------------------------------------------------
# Customers and loans
# ----------------------------------------------------------------------------------------------------------
def customer_profiles(rng: np.random.Generator, customers: int) -> pd.DataFrame:
    """Return one row per customer: id, archetype, behaviour pattern, what their calls express, language."""
    archetype = _exact_shares(rng, customers, ARCHETYPE_SHARES)
    pick = rng.integers(0, 1_000_000, customers)
    is_mixed = archetype == "mixed"
    mixed_kind = np.full(customers, "", dtype=object)
    mixed_kind[is_mixed] = _exact_shares(rng, int(is_mixed.sum()), dict(zip(_MIXED_KINDS, _MIXED_KIND_SHARES,
                                                                              strict=True)))
    pattern = np.full(customers, _ON_TIME)
    reason = np.full(customers, "", dtype=object)
    wants_calls = np.zeros(customers, dtype=bool)
    for segment in ("hardship", "forgetful", "intent_to_default"):
        is_segment = archetype == segment
        options = np.asarray(SUB_REASONS[segment], dtype=object)
        reason[is_segment] = options[pick[is_segment] % len(options)]
        wants_calls |= _exact_subset(rng, is_segment, CALLED_SHARE)
    pattern[archetype == "hardship"] = _HARDSHIP
    pattern[archetype == "forgetful"] = _FORGETFUL
    cured = _exact_subset(rng, archetype == "forgetful", 0.15)
    pattern[cured] = _FORGETFUL_CURED
    wants_calls |= cured
    is_intent = archetype == "intent_to_default"
    pattern[is_intent] = _PAID_THEN_STOPPED
    pattern[_exact_subset(rng, is_intent, 0.70)] = _FPD
    for kind in _MIXED_KINDS:
        is_kind = mixed_kind == kind
        pattern[is_kind] = _MIXED_PATTERN[kind]
        options = np.asarray(_MIXED_REASONS[kind], dtype=object)
        reason[is_kind] = options[pick[is_kind] % len(options)]
        wants_calls[is_kind] = kind != "new_no_history"
    language = np.where(rng.random(customers) < 0.75, "zh", "en")
    timezone = np.where(language == "zh", _weighted_pick(rng, _TIMEZONES["zh"], customers),
                        _weighted_pick(rng, _TIMEZONES["en"], customers))
    return pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(1, customers + 1)],
        "archetype": archetype,
        "mixed_kind": mixed_kind,
        "pattern": pattern,
        "call_reason": reason,
        "wants_calls": wants_calls,
        "timezone": timezone,
        "language": language,
    })


def loan_plans(rng: np.random.Generator, profiles: pd.DataFrame, as_of_day: int) -> pd.DataFrame:
    """Return one row per loan (the main loan of every customer plus older closed loans), ordered by loan_id.

    ``n_due`` counts installments due on or before as-of, ``unpaid_tail`` how many of the latest of them stay
    unpaid (future installments of such loans stay unpaid too); ``lag`` is as-of minus the latest due date.
    """
    n = len(profiles)
    pattern = profiles["pattern"].to_numpy()
    wants_calls = profiles["wants_calls"].to_numpy()
    draw = rng.random((6, n))
    is_hardship = pattern == _HARDSHIP
    is_forgetful = np.isin(pattern, (_FORGETFUL, _FORGETFUL_CURED))
    term = np.select(
        [pattern == _ON_TIME, is_hardship | is_forgetful, np.isin(pattern, (_FPD, _PAID_THEN_STOPPED))],
        [rng.choice([6, 12, 24, 36], n), rng.choice([12, 24, 36], n), rng.choice([6, 12, 24], n)],
        default=rng.choice([6, 12], n))
    hardship_tail = rng.integers(1, 4, n)
    stopped_tail = rng.integers(2, 5, n)
    paid_before_stop = rng.integers(1, 3, n)
    fpd_due = rng.integers(1, 4, n)
    new_due = rng.integers(1, 3, n)
    clean_room = np.maximum(np.minimum(term - hardship_tail, 30) - 5, 1)
    n_due = np.select(
        [pattern == _ON_TIME, is_hardship, is_forgetful, pattern == _FPD, pattern == _PAID_THEN_STOPPED],
        [rng.integers(1, term + 13), 6 + (draw[0] * clean_room).astype(np.int64) + hardship_tail,
         rng.integers(4, np.minimum(term, 24) + 1), fpd_due, paid_before_stop + stopped_tail],
        default=new_due)
    unpaid_tail = np.select(
        [pattern == _ON_TIME, is_hardship, pattern == _FORGETFUL, pattern == _FORGETFUL_CURED,
         pattern == _PAID_THEN_STOPPED, pattern == _NEW_OVERDUE],
        # a new customer's latest installment only: too little history to call it anything (not FPD30)
        [0, hardship_tail, 1, 0, stopped_tail, 1], default=n_due)
    lag_low = np.select(
        [is_hardship & (hardship_tail == 1), pattern == _FORGETFUL, pattern == _FORGETFUL_CURED,
         (pattern == _FPD) & (n_due == 1), (pattern == _PAID_THEN_STOPPED) & (stopped_tail == 2),
         (pattern == _NEW_OVERDUE) & (n_due == 1)],
        [5, np.where(wants_calls, 2, 1), 2, 5, 2, 3], default=0)
    lag_high = np.select([pattern == _FORGETFUL, pattern == _FORGETFUL_CURED,
                          (pattern == _NEW_OVERDUE) & (n_due == 2)], [11, 13, 11], default=28)
    lag = rng.integers(lag_low, lag_high)
    cure_call_after = rng.integers(1, np.clip(lag - 1, 1, 3) + 1)
    cure_delay = np.minimum(cure_call_after + rng.integers(0, 2, n), lag)
    past = n_due - 1
    n_late = np.clip(np.rint(draw[1] * 0.4 * past + 0.3 * past).astype(np.int64), (3 * past + 9) // 10,
                     (7 * past) // 10)
    two_partials = (hardship_tail >= 2) & (draw[3] < 0.5)
    n_partial = np.where(is_hardship & (draw[2] < 0.35), np.where(two_partials, 2, 1), 0)
    latest_due = as_of_day - lag
    latest_month = _month_of(latest_due)
    main = pd.DataFrame({
        "cust": np.arange(n), "pattern": pattern, "term": term,
        "first_month": latest_month - (n_due - 1),
        "day_of_month": latest_due - _month_start(latest_month) + 1,
        "amount_cents": _installment_cents(rng, term), "n_due": n_due, "unpaid_tail": unpaid_tail,
        "n_late": np.where(is_forgetful, n_late, 0), "n_partial": n_partial,
        "cure_call_after": np.where(pattern == _FORGETFUL_CURED, cure_call_after, 0),
        "cure_delay": cure_delay, "is_main": True,
    })
    has_closed = ((pattern == _ON_TIME) & (draw[4] < 0.15)) | (is_hardship & (draw[4] < 0.20))
    closed_term = rng.choice([6, 12], n)[has_closed]
    closed_last = main["first_month"].to_numpy()[has_closed] - rng.integers(1, 7, n)[has_closed]
    closed = pd.DataFrame({
        "cust": np.flatnonzero(has_closed), "pattern": _CLOSED, "term": closed_term,
        "first_month": closed_last - closed_term + 1, "day_of_month": rng.integers(1, 29, n)[has_closed],
        "amount_cents": _installment_cents(rng, closed_term), "n_due": closed_term, "unpaid_tail": 0,
        "n_late": 0, "n_partial": 0, "cure_call_after": 0, "cure_delay": 0, "is_main": False,
    })
    loans = pd.concat([main, closed], ignore_index=True)
    loans = loans.sort_values(["cust", "first_month"], kind="mergesort").reset_index(drop=True)
    loans["loan_id"] = [f"L{i:07d}" for i in range(1, len(loans) + 1)]
    return loans


def installment_payments(rng: np.random.Generator, loans: pd.DataFrame, as_of_day: int) -> pd.DataFrame:
    """Return one row per installment with its due day and up to two planned payments (day, cents).

    Planned payments may fall after as-of; the extract keeps only those on or before it.
    """
    term = loans["term"].to_numpy()
    loan = np.repeat(np.arange(len(loans)), term)
    size = loan.size
    starts = np.repeat(np.cumsum(term) - term, term)
    inst_no = np.arange(size) - starts + 1
    col = {name: loans[name].to_numpy()[loan] for name in (
        "pattern", "n_due", "unpaid_tail", "n_late", "n_partial", "cure_delay", "amount_cents")}
    pattern, n_due, amount = col["pattern"], col["n_due"], col["amount_cents"]
    due = _due_days(loans["first_month"].to_numpy()[loan] + inst_no - 1,
                    loans["day_of_month"].to_numpy()[loan])
    draw = rng.random((6, size))
    delay = rng.choice(np.arange(-5, 1), size, p=[0.07, 0.08, 0.10, 0.13, 0.17, 0.45])
    late_eligible = np.isin(pattern, (_FORGETFUL, _FORGETFUL_CURED)) & (inst_no < n_due)
    late = late_eligible & (_rank_within(loan, draw[0], late_eligible) < col["n_late"])
    delay = np.where(late, rng.integers(1, 4, size), delay)
    delay = np.where(pattern == _PAID_THEN_STOPPED, rng.integers(-3, 3, size), delay)
    delay = np.where((pattern == _FORGETFUL_CURED) & (inst_no == n_due), col["cure_delay"], delay)
    unpaid = (col["unpaid_tail"] > 0) & (inst_no > n_due - col["unpaid_tail"])
    partial = unpaid & (inst_no <= n_due) & (inst_no > n_due - col["n_partial"])
    pay_day = np.where(unpaid, _NO_PAYMENT, due + delay)
    pay_day = np.where(partial, due + (draw[1] * (as_of_day - due + 1)).astype(np.int64), pay_day)
    pay_cents = np.where(partial, np.rint(amount * (0.2 + 0.4 * draw[2])).astype(np.int64), amount)
    split = ~unpaid & (draw[3] < 0.03)
    first_part = np.rint(amount * (0.3 + 0.4 * draw[4])).astype(np.int64)
    return pd.DataFrame({
        "loan": loan, "installment_no": inst_no, "due_day": due, "amount_cents": amount,
        "pay1_day": np.where(split, pay_day - rng.integers(1, 7, size), pay_day),
        "pay1_cents": np.where(split, first_part, pay_cents),
        "pay2_day": np.where(split, pay_day, _NO_PAYMENT),
        "pay2_cents": np.where(split, amount - first_part, 0),
    })


def repayment_rows(schedule: pd.DataFrame, loans: pd.DataFrame, profiles: pd.DataFrame,
                   as_of_day: int) -> pd.DataFrame:
    """Return the repayments extract as strings: a row per visible payment, an empty row per unpaid one.

    A payment is visible when it is dated on or before as-of: the file is the extract taken on that day.
    """
    first_visible = schedule["pay1_day"].to_numpy() <= as_of_day
    second_visible = schedule["pay2_day"].to_numpy() <= as_of_day
    nothing = ~first_visible
    index = np.concatenate([np.flatnonzero(first_visible), np.flatnonzero(second_visible),
                            np.flatnonzero(nothing)])
    paid_day = np.concatenate([schedule["pay1_day"].to_numpy()[first_visible],
                               schedule["pay2_day"].to_numpy()[second_visible],
                               np.full(int(nothing.sum()), _NO_PAYMENT)])
    paid_cents = np.concatenate([schedule["pay1_cents"].to_numpy()[first_visible],
                                 schedule["pay2_cents"].to_numpy()[second_visible],
                                 np.zeros(int(nothing.sum()), dtype=np.int64)])
    order = np.lexsort((paid_day, index))
    index, paid_day, paid_cents = index[order], paid_day[order], paid_cents[order]
    loan = schedule["loan"].to_numpy()[index]
    amount_text = np.asarray([_money(c) for c in loans["amount_cents"].to_numpy()], dtype=object)
    customer_ids = profiles["customer_id"].to_numpy()[loans["cust"].to_numpy()]
    has_payment = paid_day != _NO_PAYMENT
    full = has_payment & (paid_cents == loans["amount_cents"].to_numpy()[loan])
    paid_text = np.where(full, amount_text[loan], "").astype(object)
    other = has_payment & ~full
    paid_text[other] = [_money(c) for c in paid_cents[other]]
    numbers = schedule["installment_no"].to_numpy()[index]
    number_text = np.asarray([str(i) for i in range(int(numbers.max(initial=0)) + 1)], dtype=object)
    paid_text_date = _date_text(np.where(has_payment, paid_day, 0))
    paid_text_date[~has_payment] = ""
    return pd.DataFrame({
        "loan_id": loans["loan_id"].to_numpy().astype(object)[loan],
        "customer_id": customer_ids.astype(object)[loan],
        "installment_no": number_text[numbers],
        "due_date": _date_text(schedule["due_day"].to_numpy()[index]),
        "amount_due": amount_text[loan],
        "paid_date": paid_text_date,
        "amount_paid": paid_text,
    }, dtype=object)


def truth_table(profiles: pd.DataFrame, call_counts: np.ndarray) -> pd.DataFrame:
    """Return the known answer per customer: archetype, expected segment and sub-reason."""
    archetype = profiles["archetype"].to_numpy()
    reason = profiles["call_reason"].to_numpy()
    silent_mixed = (archetype == "mixed") & (call_counts == 0)
    return pd.DataFrame({
        "customer_id": profiles["customer_id"],
        "archetype": archetype,
        "segment": [SEGMENT_OF_ARCHETYPE[a] for a in archetype],
        "sub_reason": np.where(silent_mixed | (archetype == "on_time"), "", reason),
    })


# ----------------------------------------------------------------------------------------------------------
# Calls
# ----------------------------------------------------------------------------------------------------------
def call_records(rng: random.Random, profiles: pd.DataFrame, loans: pd.DataFrame, schedule: pd.DataFrame,
                 as_of: date) -> tuple[list[dict], np.ndarray]:
    """Return the valid calls (ordered by start time, ids assigned) and the number of calls per customer."""
    as_of_day = _day_number(as_of)
    main_row = np.zeros(len(profiles), dtype=np.int64)
    main_row[loans.loc[loans["is_main"], "cust"].to_numpy()] = np.flatnonzero(loans["is_main"].to_numpy())
    plan = {name: loans[name].to_numpy() for name in (
        "pattern", "term", "n_due", "unpaid_tail", "cure_call_after", "loan_id")}
    inst_start = np.concatenate([[0], np.cumsum(plan["term"])])
    due_all, amount_all = schedule["due_day"].to_numpy(), schedule["amount_cents"].to_numpy()
    pay = schedule[["pay1_day", "pay1_cents", "pay2_day", "pay2_cents"]].to_numpy()
    people = profiles[["customer_id", "language", "timezone", "call_reason"]].to_numpy()
    calls: list[tuple[float, str, dict]] = []
    counts = np.zeros(len(profiles), dtype=np.int64)
    for cust in np.flatnonzero(profiles["wants_calls"].to_numpy()):
        customer_id, language, timezone, reason = people[cust]
        row = int(main_row[cust])
        span = slice(int(inst_start[row]), int(inst_start[row + 1]))
        due, amount, payments = due_all[span], amount_all[span], pay[span]
        n_due, tail = int(plan["n_due"][row]), int(plan["unpaid_tail"][row])
        if plan["pattern"][row] == _FORGETFUL_CURED:
            days_back = [as_of_day - int(due[n_due - 1]) - int(plan["cure_call_after"][row])]
        else:
            days_back = _call_days_back(rng, as_of_day - int(due[n_due - tail]))
        for back in days_back:
            call_day = as_of_day - back
            owed = amount - _paid_before(payments, call_day)
            overdue = (due < call_day) & (owed > 0)
            if not overdue.any():
                logger.warning("no overdue installment for %s on a planned call day", customer_id)
                continue
            started = _call_start(rng, call_day, timezone)
            call = compose_call(rng, language, reason, plan["loan_id"][row][-4:],
                                int(call_day - due[overdue].min()), int(owed[overdue].sum()))
            calls.append((started.timestamp(), customer_id,
                          {"customer_id": customer_id, "started_at": started.isoformat(), **call}))
            counts[cust] += 1
    calls.sort(key=lambda item: (item[0], item[1]))
    return [{"call_id": _call_id(i + 1), **call} for i, (_, _, call) in enumerate(calls)], counts


def compose_call(rng: random.Random, language: str, reason: str, tail: str, days_overdue: int,
                 amount_cents: int) -> dict:
    """Return direction, duration and turns of one call: the fixed agent script plus ASR-style speech."""
    script = AGENT_SCRIPT[language].format(tail=tail, days=days_overdue, amount=_money(amount_cents))
    direction = "inbound" if rng.random() < 0.15 else "outbound"
    style = rng.choices(("weak", "normal", "long"), weights=(0.15, 0.60, 0.25))[0]
    drop_apostrophes = language == "en" and rng.random() < 0.25
    turns: list[dict[str, str]] = []
    if direction == "inbound":
        opening = _utter(rng, language, rng.choice(_INBOUND_OPENING[language]))
        turns.append({"speaker": "customer", "text": opening})
    elif rng.random() < 0.85:
        turns.append({"speaker": "customer", "text": rng.choice(_GREETING[language])})
    turns.append({"speaker": "agent", "text": script})
    clauses = _customer_clauses(rng, language, reason, style)
    if rng.random() < 0.20:
        clauses.insert(rng.randint(1, len(clauses)), _pii_clause(rng, language))
    groups = _split_clauses(rng, clauses, style)
    for position, group in enumerate(groups):
        if position > 0:
            turns.append({"speaker": "agent", "text": rng.choice(_AGENT_FOLLOW_UP[language])})
        turns.append({"speaker": "customer", "text": " ".join(group)})
    if style == "long" and rng.random() < 0.5:
        turns.append({"speaker": "agent", "text": rng.choice(_AGENT_FOLLOW_UP[language])})
    if drop_apostrophes:
        turns = [{**t, "text": t["text"].replace("'", "")} if t["speaker"] == "customer" else t
                 for t in turns]
    return {"direction": direction, "duration_s": _duration_s(rng, language, turns), "turns": turns}


def _customer_clauses(rng: random.Random, language: str, reason: str, style: str) -> list[str]:
    """Return the customer's clauses in speaking order (identity, situation, stance, closer)."""
    if style == "weak" or not reason:
        return [_utter(rng, language, c) for c in rng.sample(_WEAK[language], rng.randint(1, 2))]
    segment = SEGMENT_OF_REASON[reason]
    stance_bank = _STANCE["evasion" if reason == "evasion" else segment][language]
    cores = rng.sample(_CORE[reason][language], 2 if style == "long" else 1)
    clauses = []
    if rng.random() < 0.7:
        clauses.append(rng.choice(_IDENTITY[language]))
    clauses.append(_utter(rng, language, cores[0]))
    if rng.random() < (0.7 if style == "long" else 0.35):
        clauses.append(_utter(rng, language, rng.choice(_DETAIL[segment][language])))
    if style == "long":
        clauses.append(_utter(rng, language, rng.choice(_QUESTION[language])))
        clauses.append(_utter(rng, language, cores[1]))
    if rng.random() < (0.9 if style == "long" else 0.7):
        clauses.append(_utter(rng, language, rng.choice(stance_bank)))
    if rng.random() < 0.4:
        clauses.append(rng.choice(_CLOSER[language]))
    return clauses


def _split_clauses(rng: random.Random, clauses: list[str], style: str) -> list[list[str]]:
    """Return the clauses grouped into customer turns: 1-4 turns, 3-6 for long calls."""
    wanted = rng.randint(3, 6) if style == "long" else rng.randint(1, 4)
    turns = max(1, min(wanted, len(clauses)))
    cuts = sorted(rng.sample(range(1, len(clauses)), turns - 1)) if turns > 1 else []
    bounds = [0, *cuts, len(clauses)]
    return [clauses[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def _utter(rng: random.Random, language: str, template: str) -> str:
    """Return one spoken clause: slots filled, fillers and the odd stutter added."""
    text = template
    if "{" in template:
        text = template.format(**{name: rng.choice(options) for name, options in _SLOTS[language].items()})
    if rng.random() < 0.45:
        text = " ".join(rng.sample(_FILLERS[language], rng.choice((1, 1, 1, 2)))) + " " + text
    if rng.random() < 0.10:
        first = text.split(" ")[0] if language == "en" else text[0]
        text = first + " " + text
    return text


def _pii_clause(rng: random.Random, language: str) -> str:
    """Return a clause carrying personal data: phone, ID, card number or email."""
    kind = rng.choice(sorted(_PII_CLAUSE[language]))
    value = {"mobile": _cn_mobile, "id_card": _cn_id_number, "bank_card": _bank_card, "email": _email,
             "us_phone": _us_phone}[kind](rng)
    return rng.choice(_PII_CLAUSE[language][kind]).format(v=value)


def _cn_mobile(rng: random.Random) -> str:
    return f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}"


def _cn_id_number(rng: random.Random) -> str:
    region = rng.choice(("110105", "310104", "440305", "510107", "330106", "420111", "370202", "320583"))
    birth = date(1965, 1, 1) + timedelta(days=rng.randint(0, 365 * 38))
    body = f"{region}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _bank_card(rng: random.Random) -> str:
    length = rng.choice((16, 16, 19, 17, 18))
    digits = rng.choice(("62", "4", "5")) + "".join(str(rng.randint(0, 9)) for _ in range(length))
    digits = digits[:length]
    if rng.random() < 0.4:
        return " ".join(digits[i:i + 4] for i in range(0, length, 4))
    return digits


def _email(rng: random.Random) -> str:
    name = rng.choice(("zhangwei", "li.na", "wangfang", "chen_jie", "john.smith", "mike", "sarah.lee",
                       "liuyang", "jess", "huang.lei", "dkim", "amy_w"))
    domain = rng.choice(("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "yahoo.com",
                         "hotmail.com"))
    return f"{name}{rng.randint(1, 9999)}@{domain}"


def _us_phone(rng: random.Random) -> str:
    area = rng.choice((212, 646, 718, 415, 310, 213, 312, 617, 305))
    exchange, line = rng.randint(200, 999), rng.randint(0, 9999)
    formats = (f"({area}) {exchange}-{line:04d}", f"{area}-{exchange}-{line:04d}",
               f"+1 {area} {exchange} {line:04d}")
    return rng.choice(formats)


def _duration_s(rng: random.Random, language: str, turns: list[dict[str, str]]) -> int:
    """Return a plausible call length in seconds from the amount of speech."""
    if language == "zh":
        speech = sum(len(t["text"].replace(" ", "")) for t in turns) * 0.22
    else:
        speech = sum(len(t["text"].split()) for t in turns) * 0.38
    return int(round(speech + 1.5 * len(turns) + rng.uniform(2, 9)))


def _call_days_back(rng: random.Random, days_past_due: int) -> list[int]:
    """Return how many days before as-of each call took place: 1-3 recent ones, sometimes older ones too.

    Every call falls after the oldest unpaid due date, so the customer was overdue when called.
    """
    recent = list(range(1, min(RECENT_CALL_DAYS - 1, days_past_due - 1) + 1))
    if not recent:
        return []
    picked = rng.sample(recent, min(len(recent), rng.choices((1, 2, 3), weights=(0.5, 0.3, 0.2))[0]))
    older = list(range(RECENT_CALL_DAYS + 1, min(OLDER_CALL_DAYS, days_past_due - 1) + 1))
    if older and rng.random() < 0.4:
        picked += rng.sample(older, min(len(older), rng.randint(1, 2)))
    return sorted(picked)


def _paid_before(payments: np.ndarray, day: int) -> np.ndarray:
    """Return cents paid per installment strictly before ``day``."""
    first = np.where(payments[:, 0] < day, payments[:, 1], 0)
    return first + np.where(payments[:, 2] < day, payments[:, 3], 0)


def _call_start(rng: random.Random, day: int, timezone: str) -> datetime:
    """Return a local start time within contact hours on ``day`` in the customer's timezone."""
    local = _date_of(day)
    minute = rng.randint(9 * 60, 20 * 60 + 29)
    return datetime(local.year, local.month, local.day, minute // 60, minute % 60, tzinfo=ZoneInfo(timezone))


def _call_id(number: int) -> str:
    return f"CALL-{number:06d}"


# ----------------------------------------------------------------------------------------------------------
# Bad rows for the quarantine
# ----------------------------------------------------------------------------------------------------------
def with_bad_repayment_rows(rng: random.Random, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple]]:
    """Return the repayments with bad rows inserted, and (source_file, source_row, rule) for each bad row."""
    loan_ids, numbers = rows["loan_id"].to_numpy(), rows["installment_no"].to_numpy()
    same_as_next = np.append((loan_ids[1:] == loan_ids[:-1]) & (numbers[1:] == numbers[:-1]), False)
    shared = same_as_next | np.insert(same_as_next[:-1], 0, False)
    candidates = np.flatnonzero((rows["paid_date"].to_numpy() != "") & ~shared)
    if candidates.size == 0:
        return rows, []
    total = min(candidates.size, max(len(REPAYMENT_RULES), int(round(BAD_ROW_SHARE * len(rows)))))
    kinds = [REPAYMENT_RULES[i % len(REPAYMENT_RULES)] for i in range(total)]
    bases = rng.sample(candidates.tolist(), total)
    bad_rows, after = [], []
    for kind, base in zip(kinds, bases, strict=False):
        bad_rows.append(_bad_repayment(rng, kind, rows.iloc[base].to_dict()))
        after.append(base + (rng.randint(0, 3) if kind == "duplicate_row" else rng.randint(-1, 40)))
    return _interleave(rows, pd.DataFrame(bad_rows, columns=rows.columns), np.clip(after, -1, len(rows) - 1),
                       kinds, "repayments.csv")


def _bad_repayment(rng: random.Random, kind: str, row: dict[str, str]) -> dict[str, str]:
    """Return a copy of a valid payment row broken so that it fails exactly the rule ``kind``."""
    bad = dict(row)
    shifted = (date.fromisoformat(row["paid_date"]) - timedelta(days=rng.randint(1, 3))).isoformat()
    if kind == "missing_key":
        bad[rng.choice(("loan_id", "customer_id", "installment_no", "due_date", "amount_due"))] = ""
        bad["paid_date"] = shifted
    elif kind == "bad_date":
        field = rng.choice(("paid_date", "paid_date", "due_date"))
        bad["paid_date"] = shifted
        bad[field] = rng.choice(_BAD_DATES)
    elif kind == "bad_amount":
        bad[rng.choice(("amount_paid", "amount_paid", "amount_due"))] = rng.choice(_BAD_AMOUNTS)
        bad["paid_date"] = shifted
    elif kind == "negative_amount":
        bad["amount_paid"] = "-" + row["amount_paid"]
        bad["paid_date"] = shifted
    elif kind == "paid_too_early":
        early = date.fromisoformat(row["due_date"]) - timedelta(days=rng.randint(366, 720))
        bad["paid_date"] = early.isoformat()
    elif kind == "payment_incomplete":
        if rng.random() < 0.5:
            bad["amount_paid"] = ""
            bad["paid_date"] = shifted
        else:
            bad["paid_date"] = ""
    return bad


def with_bad_call_lines(rng: random.Random, calls: list[dict], profiles: pd.DataFrame,
                        as_of: date) -> tuple[list[str], list[tuple]]:
    """Return the calls as JSON lines with bad lines inserted, and (source_file, source_row, rule) of each."""
    lines = [json.dumps(call, ensure_ascii=False) for call in calls]
    if not calls:
        return lines, []
    total = max(len(CALL_RULES), int(round(BAD_ROW_SHARE * len(calls))))
    kinds = [CALL_RULES[i % len(CALL_RULES)] for i in range(total)]
    language = dict(zip(profiles["customer_id"], profiles["language"], strict=True))
    timezone = dict(zip(profiles["customer_id"], profiles["timezone"], strict=True))
    next_id = len(calls)
    bad_lines, after = [], []
    for kind in kinds:
        base = rng.randrange(len(calls))
        customer = calls[base]["customer_id"]
        day = _day_number(as_of) - rng.randint(1, RECENT_CALL_DAYS - 1)
        started = _call_start(rng, day, timezone[customer])
        body = compose_call(rng, language[customer], "", "0000", rng.randint(1, 30),
                            rng.randint(10_000, 900_000))
        next_id += 1
        call = {"call_id": _call_id(next_id), "customer_id": customer, "started_at": started.isoformat(),
                **body}
        if kind == "duplicate_call_id":
            call["call_id"] = calls[base]["call_id"]
        bad_lines.append(_bad_call_line(rng, kind, call, started, language[customer]))
        duplicate = kind == "duplicate_call_id"
        after.append(base + rng.randint(0, 5) if duplicate else rng.randint(-1, len(calls) - 1))
    frame = pd.DataFrame({"line": lines})
    placed, bad = _interleave(frame, pd.DataFrame({"line": bad_lines}), np.clip(after, -1, len(calls) - 1),
                              kinds, "calls.jsonl")
    return placed["line"].tolist(), bad


def _bad_call_line(rng: random.Random, kind: str, call: dict, started: datetime, language: str) -> str:
    """Return a JSON line of ``call`` broken so that it fails exactly the rule ``kind``."""
    bad = dict(call)
    if kind == "missing_key":
        del bad[rng.choice(("call_id", "customer_id"))]
    elif kind == "bad_timestamp":
        template = rng.choice(_BAD_TIMESTAMPS)
        bad["started_at"] = template.format(d=started.date().isoformat(), t=started.strftime("%H:%M:%S"),
                                            dd=f"{started.day:02d}")
    elif kind == "unknown_speaker":
        turns = list(bad["turns"])
        turns.insert(rng.randint(1, len(turns)), {"speaker": "supervisor", "text": _SUPERVISOR[language]})
        bad["turns"] = turns
    elif kind == "empty_transcript":
        bad["turns"] = [] if rng.random() < 0.5 else [
            {**t, "text": ""} if t["speaker"] == "customer" else t for t in bad["turns"]]
    text = json.dumps(bad, ensure_ascii=False)
    return text[: len(text) // 2] if kind == "invalid_json" else text


def _interleave(good: pd.DataFrame, bad: pd.DataFrame, after: np.ndarray, kinds: list[str],
                source_file: str) -> tuple[pd.DataFrame, list[tuple]]:
    """Return good and bad rows merged (bad row i just after good row ``after[i]``) and their 1-based rows."""
    position = np.concatenate([np.arange(len(good)), np.asarray(after, dtype=np.int64)])
    tie = np.concatenate([np.zeros(len(good), dtype=np.int64), np.arange(1, len(bad) + 1)])
    order = np.lexsort((tie, position))
    merged = pd.concat([good, bad], ignore_index=True).iloc[order].reset_index(drop=True)
    row_of = np.empty(order.size, dtype=np.int64)
    row_of[order] = np.arange(1, order.size + 1)
    expected = [(source_file, int(row_of[len(good) + i]), kind) for i, kind in enumerate(kinds)]
    return merged, expected


# ----------------------------------------------------------------------------------------------------------
# Later nights: the same customers a few days on (cures and part payments after the first as-of, new calls),
# and the unanswered call attempts file. Each draw is seeded by (seed, purpose, day), never by the night, so a
# later night repeats everything an earlier night saw and only adds to it.
# ----------------------------------------------------------------------------------------------------------
def write_demo_night(out_dir: Path, customers: int, seed: int, first_as_of: date, night: int) -> DemoFiles:
    """Write night ``night`` (2, 3, ...) of the demo under ``out_dir/nights/<as-of>/``; return its files.

    Same customers and loans as the first night; some overdue customers pay after the first as-of (cures,
    part payments), some get new calls; the truth file is the first night's.
    """
    if night < 2:
        raise ValueError("night must be 2 or more: night 1 is write_demo_data")
    out_dir = Path(out_dir)
    as_of = first_as_of + timedelta(days=night - 1)
    folder = out_dir / "nights" / as_of.isoformat()
    landing = folder / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    world = _demo_world(customers, seed, first_as_of)
    schedule = later_payments(world, seed)
    repayments = repayment_rows(schedule, world.loans, world.profiles, _day_number(as_of))
    calls = world.calls + later_calls(world, schedule, seed, as_of)
    night_rng = random.Random(f"{seed}:night:{night}")
    repayment_lines, repayment_bad = with_bad_repayment_rows(night_rng, repayments)
    call_lines, call_bad = with_bad_call_lines(night_rng, calls, world.profiles, as_of)
    quarantine = pd.DataFrame(repayment_bad + call_bad, columns=list(QUARANTINE_COLUMNS)).sort_values(
        ["source_file", "source_row"], kind="mergesort")
    repayment_lines.to_csv(landing / "repayments.csv", index=False, lineterminator="\n")
    (landing / "calls.jsonl").write_text("".join(line + "\n" for line in call_lines), encoding="utf-8")
    world.profiles[list(CUSTOMER_COLUMNS)].to_csv(landing / "customers.csv", index=False, lineterminator="\n")
    contact_attempts(world, seed, as_of).to_csv(landing / ATTEMPTS_FILE, index=False, lineterminator="\n")
    files = DemoFiles(landing_dir=landing, truth_csv=out_dir / "truth.csv",
                      expected_quarantine_csv=folder / "expected_quarantine.csv", as_of=as_of)
    quarantine.to_csv(files.expected_quarantine_csv, index=False, lineterminator="\n")
    logger.info("demo night %d (%s): %d repayment rows, %d calls (%d new)", night, as_of, len(repayment_lines),
                len(call_lines), len(calls) - len(world.calls))
    return files


def later_payments(world: _World, seed: int) -> pd.DataFrame:
    """Return the schedule with payments after the first as-of: some overdue customers cure within a few days.

    Forgetful customers cure most often, then hardship (half of them pay only the oldest installment), mixed
    and intent-to-default rarely. Only installments overdue on the first as-of are paid.
    """
    rng = np.random.default_rng([seed, 20260701])
    profiles, loans = world.profiles, world.loans
    archetype = profiles["archetype"].to_numpy()
    share = np.asarray([LATER_CURE_SHARE.get(a, 0.0) for a in archetype])
    pays = rng.random(len(profiles)) < share
    cure_day = world.as_of_day + rng.integers(1, CURE_WITHIN_DAYS + 1, len(profiles))
    oldest_only = (archetype == "hardship") & (rng.random(len(profiles)) < 0.5)
    schedule = world.schedule.copy()
    cust = loans["cust"].to_numpy()[schedule["loan"].to_numpy()]
    is_main = loans["is_main"].to_numpy()[schedule["loan"].to_numpy()]
    amount, pay1_day = schedule["amount_cents"].to_numpy(), schedule["pay1_day"].to_numpy()
    unpaid = pay1_day == _NO_PAYMENT
    part = ~unpaid & (schedule["pay1_cents"].to_numpy() < amount) & (schedule["pay2_day"].to_numpy() == _NO_PAYMENT)
    hit = is_main & pays[cust] & (schedule["due_day"].to_numpy() <= world.as_of_day) & (unpaid | part)
    numbers = schedule["installment_no"].to_numpy()
    first_hit = pd.Series(np.where(hit, numbers, np.iinfo(np.int64).max)).groupby(schedule["loan"]).transform("min")
    hit &= ~oldest_only[cust] | (numbers == first_hit.to_numpy())
    day = cure_day[cust]
    schedule["pay1_day"] = np.where(hit & unpaid, day, pay1_day)
    schedule["pay1_cents"] = np.where(hit & unpaid, amount, schedule["pay1_cents"].to_numpy())
    schedule["pay2_day"] = np.where(hit & part, day, schedule["pay2_day"].to_numpy())
    schedule["pay2_cents"] = np.where(hit & part, amount - schedule["pay1_cents"].to_numpy(),
                                      schedule["pay2_cents"].to_numpy())
    return schedule


def _overdue_on(schedule: pd.DataFrame, loans: pd.DataFrame, customers: int, day: int) -> np.ndarray:
    """Return per customer whether an installment due before ``day`` is not fully paid before it."""
    due, amount = schedule["due_day"].to_numpy(), schedule["amount_cents"].to_numpy()
    paid = _paid_before(schedule[["pay1_day", "pay1_cents", "pay2_day", "pay2_cents"]].to_numpy(), day)
    late = (due < day) & (paid < amount)
    overdue = np.zeros(customers, dtype=bool)
    overdue[loans["cust"].to_numpy()[schedule["loan"].to_numpy()[late]]] = True
    return overdue


def later_calls(world: _World, schedule: pd.DataFrame, seed: int, as_of: date) -> list[dict]:
    """Return the calls made on the days from the first as-of up to the day before ``as_of`` (new call ids)."""
    profiles, loans = world.profiles, world.loans
    people = profiles[["customer_id", "language", "timezone", "call_reason"]].to_numpy()
    wants = profiles["wants_calls"].to_numpy()
    main = loans[loans["is_main"]].set_index("cust")
    calls: list[tuple[float, str, dict]] = []
    for offset, day in enumerate(range(world.as_of_day, _day_number(as_of))):
        rng = random.Random(f"{seed}:calls:{day}")
        overdue = _overdue_on(schedule, loans, len(profiles), day)
        numbered = 0
        for cust in range(len(profiles)):
            chosen = rng.random() < LATER_CALL_SHARE
            if not (chosen and wants[cust] and overdue[cust]):
                continue
            customer_id, language, timezone, reason = people[cust]
            loan = main.loc[cust]
            numbered += 1
            body = compose_call(rng, language, reason, str(loan["loan_id"])[-4:], rng.randint(2, 40),
                                int(loan["amount_cents"]))
            started = _call_start(rng, day, timezone)
            calls.append((started.timestamp(), customer_id, {
                "call_id": _call_id(LATER_CALL_IDS + offset * 10_000 + numbered), "customer_id": customer_id,
                "started_at": started.isoformat(), **body}))
    calls.sort(key=lambda item: (item[0], item[1]))
    return [call for _, _, call in calls]


def contact_attempts(world: _World, seed: int, as_of: date) -> pd.DataFrame:
    """Return the unanswered call attempts of the 14 days up to ``as_of`` (``contact_attempts.csv``).

    Overdue customers are tried now and then; a few are tried many times a day (6 attempts: the China daily
    limit), so a US customer's 7-attempts-in-7-days limit is sometimes reached.
    """
    schedule = later_payments(world, seed)
    timezones = world.profiles["timezone"].to_numpy()
    ids = world.profiles["customer_id"].to_numpy()
    rows = []
    last = _day_number(as_of)
    for day in range(last - ATTEMPT_DAYS + 1, last + 1):
        rng = random.Random(f"{seed}:attempts:{day}")
        overdue = _overdue_on(schedule, world.loans, len(ids), day)
        for cust in np.flatnonzero(overdue):
            draw = rng.random()
            tries = 6 if draw < 0.03 else rng.randint(1, 3) if draw < 0.15 else 0
            for minute in sorted(rng.sample(range(9 * 60, 20 * 60), tries)):
                local = _date_of(day)
                started = datetime(local.year, local.month, local.day, minute // 60, minute % 60,
                                   tzinfo=ZoneInfo(str(timezones[cust])))
                rows.append((started.timestamp(), ids[cust], started.isoformat(),
                             rng.choice(("no_answer", "no_answer", "busy", "voicemail", "rejected"))))
    rows.sort(key=lambda row: (row[0], row[1]))
    return pd.DataFrame([row[1:] for row in rows], columns=["customer_id", "attempted_at", "outcome"])


# ----------------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------------
def _exact_shares(rng: np.random.Generator, size: int, shares: dict[str, float]) -> np.ndarray:
    """Return ``size`` labels in exactly the given shares (largest remainder), shuffled."""
    names = list(shares)
    raw = np.asarray([shares[name] * size for name in names])
    counts = np.floor(raw).astype(np.int64)
    for index in np.argsort(-(raw - counts), kind="stable")[: size - counts.sum()]:
        counts[index] += 1
    return rng.permutation(np.repeat(np.asarray(names, dtype=object), counts))


def _exact_subset(rng: np.random.Generator, mask: np.ndarray, share: float) -> np.ndarray:
    """Return a mask of exactly round(share * count) randomly chosen elements of ``mask``."""
    members = np.flatnonzero(mask)
    chosen = np.zeros(mask.size, dtype=bool)
    chosen[rng.permutation(members)[: int(round(share * members.size))]] = True
    return chosen


def _weighted_pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...], size: int) -> np.ndarray:
    names = np.asarray([name for name, _ in options], dtype=object)
    weights = np.asarray([weight for _, weight in options])
    return names[rng.choice(len(names), size, p=weights / weights.sum())]


def _installment_cents(rng: np.random.Generator, term: np.ndarray) -> np.ndarray:
    """Return the monthly installment in cents for a random principal and rate."""
    principal = rng.integers(20, 601, term.size) * 100
    rate = rng.uniform(0.10, 0.24, term.size)
    return np.rint(principal * 100 * (1 + rate * term / 12) / term).astype(np.int64)


def _rank_within(group: np.ndarray, key: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Return each element's rank by ``key`` among the eligible elements of its (sorted, contiguous) group."""
    order = np.lexsort((key, ~eligible, group))
    sorted_group = group[order]
    rank = np.empty(group.size, dtype=np.int64)
    rank[order] = np.arange(group.size) - np.searchsorted(sorted_group, sorted_group, side="left")
    return rank


def _day_number(day: date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def _date_of(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def _month_of(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_start(months: np.ndarray) -> np.ndarray:
    return np.asarray(months, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _due_days(months: np.ndarray, day_of_month: np.ndarray) -> np.ndarray:
    """Return due days for monthly installments, the day of month clipped to the month's length."""
    start = _month_start(months)
    length = _month_start(months + 1) - start
    return start + np.minimum(day_of_month, length) - 1


def _date_text(days: np.ndarray) -> np.ndarray:
    """Return ISO dates as an object array; each distinct day is formatted once."""
    distinct, inverse = np.unique(np.asarray(days, dtype=np.int64), return_inverse=True)
    text = np.datetime_as_string(distinct.astype("datetime64[D]"), unit="D").astype(object)
    return text[inverse.reshape(-1)]


def _money(cents: int) -> str:
    return f"{int(cents) // 100}.{int(cents) % 100:02d}"
